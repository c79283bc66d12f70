"""Sampling in a chosen precision, noise drawn in fixed chunks, and large n streamed to an .npz.

Built on small random generators (no training), so every case takes a second or two.
"""

from __future__ import annotations

import json
import logging
import zipfile
from pathlib import Path
from typing import get_args

import numpy as np
import pytest
import torch

import ganforge.report
import ganforge.sampling
from ganforge.cli import main
from ganforge.config import SamplingConfig
from ganforge.data import DataInfo
from ganforge.engine.checkpoint import read_tensors, write_tensors
from ganforge.errors import UserError
from ganforge.nets.dcgan import DCGANGenerator
from ganforge.nets.mlp import MLPGenerator
from ganforge.report import samples_array, write_npz
from ganforge.sampling import (
    FP16_ON_CPU,
    LATENT_CHUNK,
    PRECISIONS,
    Sampler,
    load_generator,
    save_generator,
)

Capture = pytest.CaptureFixture[str]
POINTS = DataInfo("toy", "points", (2,), None)
IMAGES = DataInfo("toy", "images", (1, 8, 8), None)


def points_sampler(latent_dim: int = 2, **options: object) -> Sampler:
    """Return a Sampler over a random MLP generator of 2-D points (latents above 8 dims use probes)."""
    torch.manual_seed(0)
    net = MLPGenerator(data_shape=(2,), latent_dim=latent_dim, hidden=(32, 32))
    return Sampler(net, POINTS, **options)


def images_sampler(**options: object) -> Sampler:
    """Return a Sampler over a random width-8 DCGAN generator of 1x8x8 images (batch norm, convolutions)."""
    torch.manual_seed(0)
    return Sampler(DCGANGenerator(data_shape=(1, 8, 8), latent_dim=16, width=8), IMAGES, **options)


def saved(sampler: Sampler, folder: Path) -> Path:
    """Save the sampler's generator into `folder` (a run folder holding only generator.safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    save_generator(folder / ganforge.sampling.GENERATOR_FILE, sampler)
    return folder


def error_line(code: int, err: str) -> str:
    """Check the CLI contract for a user mistake (exit 2, one line, no traceback) and return the line."""
    assert code == 2 and "Traceback" not in err, err
    assert len(err.splitlines()) == 1 and err.startswith("error: "), err
    return err.strip()


# -- precision ---------------------------------------------------------------------------------------------


def test_bf16_samples_are_float32_and_close_to_fp32() -> None:
    exact = points_sampler().sample(500, seed=0)
    fast = points_sampler(precision="bf16").sample(500, seed=0)
    assert fast.dtype == torch.float32 and fast.shape == exact.shape
    assert not torch.equal(fast, exact)  # the matmuls really ran in bf16
    assert (fast - exact).abs().mean() < 0.05 * exact.abs().mean()
    images = images_sampler(precision="bf16").sample(20, seed=0)  # convolutions and batch norm under autocast
    assert images.dtype == torch.float32 and images.shape == (20, 1, 8, 8)
    assert torch.allclose(images, images_sampler().sample(20, seed=0), atol=0.01)


def test_fp16_on_the_cpu_and_unknown_precisions_are_user_errors(tmp_path: Path) -> None:
    with pytest.raises(UserError) as caught:
        points_sampler(precision="fp16")
    assert str(caught.value) == FP16_ON_CPU
    with pytest.raises(UserError, match="precision must be fp32, bf16 or fp16, got 'fp64'"):
        points_sampler(precision="fp64")
    run = saved(points_sampler(), tmp_path / "run")
    with pytest.raises(UserError, match="fp16 needs a CUDA device"):
        load_generator(run, precision="fp16")
    assert get_args(SamplingConfig.model_fields["precision"].annotation) == PRECISIONS  # one list of values


def test_precision_is_saved_with_the_generator_and_can_be_overridden(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = saved(points_sampler(precision="bf16", jacobian_reject=0.1), tmp_path / "run")
    metadata, state = read_tensors(run / ganforge.sampling.GENERATOR_FILE)
    assert json.loads(metadata["sampling"]) == {"jacobian_reject": 0.1, "precision": "bf16"}
    assert load_generator(run).precision == "bf16"
    assert load_generator(run, precision="fp32").precision == "fp32"

    # Files from before the setting sample in fp32; an fp16 file still loads onto the CPU, in fp32.
    for stored, expected in ({"jacobian_reject": 0.1}, "fp32"), ({"precision": "fp16"}, "fp32"):
        write_tensors(
            run / ganforge.sampling.GENERATOR_FILE, state, {**metadata, "sampling": json.dumps(stored)}
        )
        with caplog.at_level(logging.WARNING, logger="ganforge"):
            assert load_generator(run).precision == expected
    assert "fp16, which needs CUDA" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 sampling needs CUDA")
def test_fp16_on_cuda_is_close_to_fp32() -> None:
    exact = points_sampler().sample(500, seed=0)
    sampler = points_sampler(precision="fp16")
    sampler.net.cuda()
    fast = sampler.sample(500, seed=0)
    assert fast.dtype == torch.float32 and fast.device.type == "cpu"
    assert (fast - exact).abs().mean() < 0.05 * exact.abs().mean()


def test_cli_precision_flag(tmp_path: Path, capsys: Capture) -> None:
    run = saved(points_sampler(), tmp_path / "run")
    out = tmp_path / "bf16.npz"
    assert (
        main(["sample", str(run), "--n", "300", "--seed", "1", "--precision", "bf16", "--out", str(out)]) == 0
    )
    with np.load(out) as archive:
        fast = archive["x"]
    exact = points_sampler().sample(300, seed=1).numpy()
    assert fast.dtype == np.float32 and not np.array_equal(fast, exact)
    assert np.abs(fast - exact).mean() < 0.05 * np.abs(exact).mean()

    capsys.readouterr()
    code = main(["sample", str(run), "--precision", "fp64", "--out", str(tmp_path / "x.npz")])
    assert "--precision" in error_line(code, capsys.readouterr().err)
    code = main(["sample", str(run), "--precision", "fp16", "--out", str(tmp_path / "x.npz")])
    assert FP16_ON_CPU in error_line(code, capsys.readouterr().err)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["bf16.npz", "run"]


# -- noise in chunks, streaming ------------------------------------------------------------------------------


def test_latents_are_one_draw_up_to_a_chunk_and_consecutive_chunks_beyond() -> None:
    sampler = points_sampler(latent_dim=3)
    for n in (1, 100, LATENT_CHUNK):  # what a single torch.randn gave before chunking
        single = torch.randn(n, 3, generator=torch.Generator().manual_seed(7))
        assert torch.equal(sampler.latents(n, seed=7), single)
    stream = torch.Generator().manual_seed(7)
    chunks = [torch.randn(rows, 3, generator=stream) for rows in (LATENT_CHUNK, LATENT_CHUNK, 10)]
    assert torch.equal(sampler.latents(2 * LATENT_CHUNK + 10, seed=7), torch.cat(chunks))


@pytest.mark.parametrize("reject", [0.0, 0.3])
def test_streamed_batches_are_the_samples(reject: float) -> None:
    sampler = points_sampler(jacobian_reject=reject)
    n = LATENT_CHUNK + 1000  # crosses a chunk boundary (and, truncated, many blocks)
    batches = list(sampler.iter_samples(n, seed=4, batch_size=700))
    assert [len(batch) for batch in batches] == [700] * (n // 700) + [n % 700]
    assert torch.equal(torch.cat(batches), sampler.sample(n, seed=4, batch_size=700))
    assert torch.equal(torch.cat(batches), sampler.sample(n, seed=4))  # the batch size changes nothing
    assert not torch.equal(torch.cat(batches), sampler.sample(n, seed=5))


def test_truncation_keeps_a_subsequence_of_the_plain_latents(monkeypatch: pytest.MonkeyPatch) -> None:
    sampler = points_sampler(jacobian_reject=0.3)
    plain = sampler.latents(LATENT_CHUNK, seed=2)
    kept = plain[sampler.latent_norms(plain) <= sampler.truncation_threshold()]
    assert torch.equal(sampler.truncated_latents(1000, seed=2), kept[:1000])

    # Above 8 latent dimensions the norms are estimated from random probes; these too ignore the batching.
    monkeypatch.setattr(ganforge.sampling, "CALIBRATION_LATENTS", 512)  # a faster threshold, same code
    probed = points_sampler(latent_dim=12, jacobian_reject=0.3)
    first = torch.cat(list(probed.iter_samples(700, seed=3, batch_size=128)))
    assert torch.equal(first, probed.sample(700, seed=3, batch_size=50))
    assert torch.equal(first, probed.sample(700, seed=3))


@pytest.mark.parametrize("make", [points_sampler, images_sampler])
def test_streamed_npz_holds_the_in_memory_samples(make: object, tmp_path: Path) -> None:
    sampler = make()  # type: ignore[operator]
    path = sampler.save(tmp_path / "big.npz", n=1300, seed=9, batch_size=256)
    assert path == tmp_path / "big.npz" and [p.name for p in tmp_path.iterdir()] == ["big.npz"]
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["x.npy"]
    with np.load(path) as archive:
        streamed = archive["x"]
    expected = samples_array(sampler.sample(1300, seed=9), sampler.data.kind)
    assert streamed.dtype == expected.dtype == (np.uint8 if sampler.data.kind == "images" else np.float32)
    assert np.array_equal(streamed, expected)
    in_memory = ganforge.report.save_samples(
        sampler.sample(1300, seed=9), sampler.data.kind, tmp_path / "m.npz"
    )
    with np.load(in_memory) as archive:
        assert np.array_equal(archive["x"], streamed)


def test_streaming_holds_one_batch_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    largest = {"decoded": 0, "written": 0}
    decode, write = Sampler.decode, ganforge.report.write_npz

    def recording_decode(self: Sampler, z: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
        largest["decoded"] = max(largest["decoded"], len(z))
        return decode(self, z, batch_size)

    def recording_write(path: Path, batches: object, *args: object, **kwargs: object) -> Path:
        def watched() -> object:
            for batch in batches:  # type: ignore[attr-defined]
                largest["written"] = max(largest["written"], len(batch))
                yield batch

        return write(path, watched(), *args, **kwargs)

    def no_sample(*args: object, **kwargs: object) -> None:
        raise AssertionError("sample() holds all n samples; streaming must not call it")

    monkeypatch.setattr(Sampler, "decode", recording_decode)
    monkeypatch.setattr(Sampler, "sample", no_sample)
    monkeypatch.setattr(ganforge.report, "write_npz", recording_write)
    path = points_sampler().save(tmp_path / "big.npz", n=20_000, seed=0, batch_size=512)
    assert largest == {"decoded": 512, "written": 512}
    with np.load(path) as archive:
        assert archive["x"].shape == (20_000, 2)


def test_a_failed_write_leaves_no_file(tmp_path: Path) -> None:
    def failing() -> object:
        yield np.zeros((4, 2), np.float32)
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_npz(tmp_path / "x.npz", failing(), (8, 2), np.float32)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="got 4 rows, announced 8"):
        write_npz(tmp_path / "x.npz", [np.zeros((4, 2), np.float32)], (8, 2), np.float32)
    with pytest.raises(ValueError, match="does not fit"):
        write_npz(tmp_path / "x.npz", [np.zeros((8, 3), np.float32)], (8, 2), np.float32)
    assert list(tmp_path.iterdir()) == []


def test_cli_streams_npz_and_keeps_png_small(tmp_path: Path, capsys: Capture) -> None:
    run = saved(points_sampler(), tmp_path / "run")
    out = tmp_path / "big.npz"
    assert main(["sample", str(run), "--n", "20000", "--seed", "3", "--out", str(out)]) == 0
    with np.load(out) as archive:
        assert np.array_equal(archive["x"], points_sampler().sample(20_000, seed=3).numpy())
    capsys.readouterr()
    code = main(["sample", str(run), "--n", "5000", "--out", str(tmp_path / "grid.png")])
    line = error_line(code, capsys.readouterr().err)
    assert "--n" in line and ".npz" in line and "4096" in line
    assert not (tmp_path / "grid.png").exists()
    with pytest.raises(UserError, match="write an .npz"):
        points_sampler().save(tmp_path / "grid.png", n=5000)
