"""The HTML report: one self-contained page whose structure is checked by parsing it (not its pixels)."""

from __future__ import annotations

import base64
import io
import json
import random
import shutil
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge
from ganforge.errors import UserError
from ganforge.report import nearest_neighbours, slerp, write_report

PNG_PREFIX = "data:image/png;base64,"


class Page(HTMLParser):
    """The parts of a report a test looks at: images, sections, details, table cells, every attribute."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.images: list[str] = []  # src of every <img>
        self.sections: list[str] = []  # id of every <section>
        self.tags: list[str] = []
        self.attributes: list[tuple[str, str]] = []
        self.details: list[str] = []  # text of each <details>
        self.cells: list[str] = []  # text of each <td>
        self._details_depth = 0
        self._cell: list[str] | None = None
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attributes += [(name, value or "") for name, value in attrs]
        values = dict(attrs)
        if tag == "img":
            self.images.append(values.get("src") or "")
        elif tag == "section":
            self.sections.append(values.get("id") or "")
        elif tag == "details":
            self.details.append("")
            self._details_depth += 1
        elif tag == "td":
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "details":
            self._details_depth -= 1
        elif tag == "td" and self._cell is not None:
            self.cells.append("".join(self._cell))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._details_depth:
            self.details[-1] += data
        if self._cell is not None:
            self._cell.append(data)


def parse(path: Path) -> Page:
    return Page(path.read_text(encoding="utf-8"))


def assert_self_contained(page: Page, text: str) -> None:
    assert page.images
    for src in page.images:
        assert src.startswith(PNG_PREFIX), src[:40]
        with Image.open(io.BytesIO(base64.b64decode(src.removeprefix(PNG_PREFIX)))) as image:
            assert image.format == "PNG"
            image.verify()
    assert "http://" not in text and "https://" not in text
    assert not {"script", "link", "iframe", "object"} & set(page.tags)
    for name, value in page.attributes:
        if name in ("src", "href"):
            assert value.startswith((PNG_PREFIX, "#")), (name, value[:40])


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Return a tiny DCGAN-on-digits run (4 steps, grids at steps 2 and 4); copy it before changing it."""
    run_dir = tmp_path_factory.mktemp("report") / "digits"
    ganforge.train(
        preset="dcgan-digits",
        run_dir=run_dir,
        overrides=[
            "training.steps=4",
            "training.batch_size=16",
            "nets.generator.options.width=8",
            "nets.discriminator.options.width=8",
            "logging.tensorboard=false",
            "logging.sample_every=2",
            "logging.log_every=2",
        ],
    )
    return run_dir


def score(label: str, values: dict[str, float], step: int) -> dict:
    manifest = {
        "metric": label.split("[")[0],
        "extractor_label": "lenet:mnist5k",
        "extractor_file_hash": "0" * 64,
        "resize": "bilinear",
        "precision": "fp32",
        "n_real": 1797,
        "n_fake": 500,
        "reference": {"dataset": "digits", "split": "train"},
        "seed": 0,
        "generator": {"sha256": "f" * 64, "step": step, "weights": "ema"},
        "versions": {"ganforge": ganforge.__version__},
        "time": "2025-01-02T03:04:05+0000",
        "seconds": 1.5,
    }
    return {"metric": manifest["metric"], "label": label, "values": values, "manifest": manifest}


def test_image_run_report_is_self_contained_with_every_section(digits_run: Path) -> None:
    path = digits_run / "report.html"  # written by the RunReport callback at the end of training
    text = path.read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(page, text)
    sections = ["samples", "curves", "metrics", "neighbours", "interpolation", "progress", "config"]
    assert page.sections == sections
    assert "ganforge evaluate" in text and "--metrics fid,kid,pr" in text  # no evaluations yet
    assert "latent_dim: 64" in text  # the config
    # real and generated grids, the curves, 8 rows of 4 neighbours, the interpolation strips, 2 progress grids
    assert len(page.images) >= 2 + 1 + 8 * 4 + 1 + 2
    assert "step 2" in text and "step 4" in text
    assert "memoris" in text


def test_metrics_table_shows_stored_scores_with_manifests(digits_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    scores = [
        score("fid[lenet:mnist5k]", {"fid": 123.456789}, 2),
        score("fid[lenet:mnist5k]", {"fid": 98.7654321}, 4),
        score("kid[lenet:mnist5k]", {"kid_mean": 0.0123456, "kid_std": 0.001}, 4),
    ]
    (run_dir / "evaluations").mkdir()
    (run_dir / "evaluations" / "eval-20250102-030405-000001.json").write_text(
        json.dumps({"settings": {"metrics": ["fid", "kid"]}, "scores": scores})
    )
    text = write_report(run_dir).read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(page, text)
    assert "ganforge evaluate" not in text
    cells = " | ".join(page.cells)
    assert "fid[lenet:mnist5k]" in cells and "kid[lenet:mnist5k]" in cells
    assert "123.5" in cells and "98.77" in cells and "0.01235" in cells  # 4 significant digits
    assert "500" in cells and "2025-01-02 03:04" in cells
    assert len(page.details) == 3
    manifest = json.loads(page.details[0][page.details[0].index("{") :])
    assert manifest["generator"]["step"] == 2 and manifest["extractor_file_hash"] == "0" * 64
    assert "Scores over training" in text  # fid was measured at two generator steps


def test_points_run_has_a_scatter_plot_and_no_image_sections(tiny_run: Path) -> None:
    text = (tiny_run / "report.html").read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(page, text)
    assert page.sections == ["samples", "curves", "metrics", "progress", "config"]
    assert 'alt="generated points over real points"' in text
    assert "centres of the mixture" in text


def test_report_leaves_the_global_rngs_alone(digits_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    torch.manual_seed(123)
    np.random.seed(123)
    random.seed(123)
    before = torch.get_rng_state(), np.random.get_state(), random.getstate()
    write_report(run_dir, title="a title")
    assert torch.equal(torch.get_rng_state(), before[0])
    after_numpy = np.random.get_state()
    assert after_numpy[0] == before[1][0] and np.array_equal(after_numpy[1], before[1][1])
    assert after_numpy[2:] == before[1][2:]
    assert random.getstate() == before[2]


def test_report_of_the_same_run_is_the_same_but_for_its_time(digits_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    first = Page(write_report(run_dir).read_text(encoding="utf-8")).images
    second = Page(write_report(run_dir).read_text(encoding="utf-8")).images
    assert first == second


def test_report_of_a_run_without_generator_or_logs_still_works(digits_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    shutil.copy(digits_run / "config.yaml", run_dir / "config.yaml")
    text = write_report(run_dir, title="early").read_text(encoding="utf-8")
    page = Page(text)
    assert page.sections[:3] == ["samples", "curves", "metrics"] and "config" in page.sections
    assert "generator.safetensors" in text and "No metrics.jsonl lines yet" in text
    assert "could not be drawn" not in text


def test_report_survives_a_corrupt_generator_and_evaluation_file(digits_run: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(digits_run, run_dir)
    (run_dir / "generator.safetensors").write_bytes(b"not a safetensors file")
    (run_dir / "evaluations").mkdir()
    (run_dir / "evaluations" / "eval-broken.json").write_text("{ half a file")
    text = write_report(run_dir).read_text(encoding="utf-8")
    page = Page(text)
    assert_self_contained(page, text)  # the real images, curves and progress grids are still there
    assert "corrupted" in text and "eval-broken.json could not be read" in text
    assert "could not be drawn" not in text


def test_report_refuses_a_folder_that_is_not_a_run(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="not a ganforge run"):
        write_report(tmp_path)
    with pytest.raises(UserError, match="does not exist"):
        write_report(tmp_path / "missing")


# -- slerp and nearest neighbours ---------------------------------------------------------------------


def test_slerp_endpoints_are_exact() -> None:
    generator = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 16, generator=generator)
    path = slerp(z0, z1, torch.linspace(0, 1, 7))
    assert path.shape == (7, 16)
    assert torch.equal(path[0], z0) and torch.equal(path[-1], z1)
    assert torch.equal(slerp(z0, z1, 0.0), z0) and torch.equal(slerp(z0, z1, 1.0), z1)


def test_slerp_keeps_the_norm_of_equal_norm_vectors() -> None:
    generator = torch.Generator().manual_seed(1)
    z0, z1 = torch.randn(2, 32, generator=generator, dtype=torch.float64)
    z1 = z1 * (z0.norm() / z1.norm())
    norms = slerp(z0, z1, torch.linspace(0, 1, 11, dtype=torch.float64)).norm(dim=1)
    assert torch.allclose(norms, z0.norm().expand(11), rtol=1e-9)


def test_slerp_halfway_between_orthogonal_unit_vectors_has_norm_one() -> None:
    e0, e1 = torch.eye(2)
    halfway = slerp(e0, e1, 0.5)
    assert halfway.norm().item() == pytest.approx(1.0, abs=1e-6)
    assert torch.allclose(halfway, torch.tensor([1.0, 1.0]) / 2**0.5)


def test_slerp_of_parallel_vectors_falls_back_to_a_straight_line() -> None:
    z = torch.tensor([1.0, 2.0, 3.0])
    assert torch.allclose(slerp(z, 2 * z, 0.5), 1.5 * z)


def test_nearest_neighbours_in_chunks_match_brute_force() -> None:
    generator = torch.Generator().manual_seed(2)
    references = torch.randn(103, 1, 4, 4, generator=generator)
    queries = torch.cat([references[[5, 77]], torch.randn(3, 1, 4, 4, generator=generator)])
    distances, indices = nearest_neighbours(queries, references, k=3, chunk_values=16 * 10)  # chunks of 10
    flat_queries, flat_references = (
        queries.reshape(5, 1, -1).double(),
        references.reshape(1, 103, -1).double(),
    )
    full = (flat_queries - flat_references).square().sum(-1).sqrt()  # (5, 103)
    expected = full.topk(3, largest=False)
    assert torch.equal(indices, expected.indices)
    assert torch.allclose(distances, expected.values.float())
    assert indices[0, 0] == 5 and indices[1, 0] == 77 and distances[:2, 0].abs().max() == 0
