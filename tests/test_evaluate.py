"""Evaluation end to end: scores with manifests, exact re-runs, the CLI, evaluation while training."""

from __future__ import annotations

import json
import shutil
import signal
from pathlib import Path

import numpy as np
import pytest
import torch

import ganforge
from ganforge.cli import main
from ganforge.config import DataConfig
from ganforge.data import load_dataset
from ganforge.engine import Trainer
from ganforge.engine.checkpoint import load_state
from ganforge.metrics.evaluate import evaluate, read_evaluations, rerun
from ganforge.sampling import Sampler

RING = ["training.batch_size=64", "logging.tensorboard=false", "data.num_samples=4000"]
SMALL = ["nets.generator.options.hidden=[64,64]", "nets.discriminator.options.hidden=[64,64]"]


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("ring") / "run"
    ganforge.train(
        preset="vanilla-ring8",
        overrides=["logging.tensorboard=false", "training.steps=1500", "data.holdout=0.1"],
        run_dir=run_dir,
    )
    return run_dir


def copy(run: Path, to: Path) -> Path:
    shutil.copytree(run, to)
    return to


def test_scores_carry_complete_manifests(ring_run: Path, tmp_path: Path) -> None:
    run = copy(ring_run, tmp_path / "run")
    result = evaluate(run, ["fid", "kid", "pr", "dc", "modes", "memorisation"], n=600, seed=3)
    labels = [score.label for score in result.scores]
    assert labels == ["fid[raw]", "kid[raw]", "pr[raw]", "dc[raw]", "modes", "memorisation[raw]"]
    manifest = result.scores[0].manifest
    for key in (
        "metric",
        "extractor",
        "extractor_label",
        "extractor_file_hash",
        "resize",
        "precision",
        "n_real",
        "n_fake",
        "reference",
        "seed",
        "generator",
        "versions",
        "time",
    ):
        assert key in manifest, key
    assert manifest["n_fake"] == 600 and manifest["n_real"] == 600 and manifest["seed"] == 3
    assert manifest["reference"]["holdout"] == 0.1 and manifest["reference"]["split"] == "train"
    assert manifest["generator"]["sha256"] == ganforge.load_generator(run).weights_hash
    assert manifest["versions"]["torch"] == torch.__version__
    stored = read_evaluations(run)
    assert [score["label"] for score in stored] == labels
    assert result.path is not None and result.path.parent == run / "evaluations"


def test_a_rerun_reproduces_every_number(ring_run: Path, tmp_path: Path) -> None:
    run = copy(ring_run, tmp_path / "run")
    result = evaluate(run, ["fid", "kid", "pr", "modes"], n=500, seed=1)
    checks = rerun(result.path)
    assert checks and all(check.same for check in checks), [c for c in checks if not c.same]
    assert main(["evaluate", "--rerun", str(result.path)]) == 0


def test_a_changed_generator_is_refused_on_rerun(ring_run: Path, tmp_path: Path) -> None:
    run = copy(ring_run, tmp_path / "run")
    result = evaluate(run, ["fid"], n=200)
    ganforge.resume(run, steps=1510)  # new weights in generator.safetensors
    with pytest.raises(ganforge.UserError, match="has changed"):
        rerun(result.path)


def test_scores_tell_a_good_generator_from_a_bad_one(ring_run: Path) -> None:
    trained = evaluate(ring_run, ["fid", "modes"], n=1000, write=False)
    sampler = ganforge.load_generator(ring_run)
    with torch.no_grad():  # the same net with its weights scrambled
        for parameter in sampler.net.parameters():
            parameter.copy_(torch.randn_like(parameter))
    scrambled = evaluate(ring_run, ["fid", "modes"], n=1000, write=False, sampler=sampler)
    assert trained.scores[0].values["fid"] < scrambled.scores[0].values["fid"]
    assert trained.scores[1].values["modes"] >= 6 > scrambled.scores[1].values["modes"]


def test_cli_evaluate_prints_labelled_scores(ring_run: Path, tmp_path: Path, capsys) -> None:
    run = copy(ring_run, tmp_path / "run")
    assert main(["evaluate", str(run), "--metrics", "fid,modes", "--n", "300"]) == 0
    out = capsys.readouterr().out
    assert "fid[raw]" in out and "modes" in out and "high_quality" in out


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--metrics", "nosuch"], ["--metrics", "nosuch", "known:", "fid"]),
        (["--n", "1"], ["--n"]),
        (["--metrics", "pr", "--n", "3"], ["3"]),  # k = 3 needs more samples than that
        (["--extractor", "nosuch"], ["--extractor", "known:"]),
        (["--extractor", "lenet"], ["lenet"]),  # a digit classifier cannot read 2-D points
        (["--metrics", "stacked_modes"], ["stacked"]),
        (["--precision", "fp8"], ["--precision"]),
        (["--metrics", "cas"], ["cas", "conditional"]),
    ],
)
def test_bad_evaluate_input_gets_one_line(argv, words, ring_run: Path, tmp_path: Path, capsys) -> None:
    run = copy(ring_run, tmp_path / "run")
    assert main(["evaluate", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and len(err.splitlines()) == 1 and "Traceback" not in err
    for word in words:
        assert word in err, (word, err)


def test_memorisation_needs_held_out_data(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    ganforge.train(preset="vanilla-ring8", overrides=[*RING, *SMALL, "training.steps=2"], run_dir=run)
    assert main(["evaluate", str(run), "--metrics", "memorisation", "--n", "100"]) == 2
    assert "data.holdout" in capsys.readouterr().err


def test_missing_inception_file_says_how_to_get_one(tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    ganforge.train(
        preset="dcgan-digits",
        run_dir=run,
        overrides=[
            "training.steps=2",
            "training.batch_size=16",
            "nets.generator.options.width=8",
            "nets.discriminator.options.width=8",
            "logging.tensorboard=false",
        ],
    )
    missing = tmp_path / "nope.pt"
    argv = ["evaluate", str(run), "--extractor", "inception", "--extractor-path", str(missing), "--n", "8"]
    assert main(argv) == 2
    assert str(missing) in capsys.readouterr().err


def test_evaluation_while_training_keeps_the_best_and_resumes_exactly(tmp_path: Path) -> None:
    every = [
        "evaluation.every=50",
        "evaluation.metric=modes",
        "evaluation.n=300",
        "logging.checkpoint_every=100",
        "training.steps=200",
    ]
    straight = ganforge.train(
        preset="vanilla-ring8", overrides=[*RING, *SMALL, *every], run_dir=tmp_path / "straight"
    )
    best = json.loads((tmp_path / "straight" / "best.json").read_text())
    assert best["metric"] == "modes" and best["step"] in (50, 100, 150, 200)
    history = [s for s in read_evaluations(tmp_path / "straight") if s["metric"] == "modes"]
    assert [s["manifest"]["generator"]["step"] for s in history] == [50, 100, 150, 200]
    assert best["value"] == max(s["values"]["modes"] for s in history)
    assert load_state(tmp_path / "straight" / "checkpoints" / "best.safetensors")["step"] == best["step"]
    assert ganforge.load_generator(tmp_path / "straight" / "best_generator.safetensors").step == best["step"]

    # Evaluating must not disturb training: stop at 120, resume, and land on the same weights.
    class StopAt(ganforge.Callback):
        def on_step_end(self, trainer, stats) -> None:
            if trainer.step == 120:
                signal.raise_signal(signal.SIGTERM)

    from ganforge.config import resolve

    config = resolve(preset="vanilla-ring8", overrides=[*RING, *SMALL, *every])
    ganforge.api.prepare_run_dir(tmp_path / "split", overwrite=False)
    assert Trainer(config, tmp_path / "split", [StopAt()]).fit().step == 120
    assert ganforge.resume(tmp_path / "split").step == straight.step
    left = ganforge.load_generator(tmp_path / "straight").net.state_dict()
    right = ganforge.load_generator(tmp_path / "split").net.state_dict()
    assert all(torch.equal(left[k], right[k]) for k in left)


@pytest.mark.slow
def test_stacked_digits_read_by_lenet(tmp_path: Path, monkeypatch) -> None:
    """Real stacked digits as the 'generator': nearly all 1,000 modes, low KL, and a low FID[lenet]."""
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    data = load_dataset(DataConfig(name="stacked-mnist5k", num_samples=6000, seed=5))

    class RealData(Sampler):
        def sample(self, n, seed=None, labels=None, batch_size=512):
            return data.x[:n]

    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text("data: {name: stacked-mnist5k, num_samples: 6000}\n")
    generator = ganforge.nets.build_net(
        "dcgan_generator", {"width": 8}, "g", data_shape=(3, 28, 28), latent_dim=4
    )
    sampler = RealData(generator, data.info)
    result = evaluate(run, ["stacked_modes", "fid"], n=5000, sampler=sampler, write=False)
    modes = result.scores[0].values
    assert modes["modes"] >= 950 and modes["kl_uniform"] < 0.2, modes
    assert result.scores[1].label == "fid[lenet:mnist5kx3]"
    noise = RealData(generator, data.info)
    noise.sample = lambda n, seed=None, labels=None, batch_size=512: torch.rand(n, 3, 28, 28) * 2 - 1
    noisy = evaluate(run, ["fid"], n=2000, sampler=noise, write=False).scores[0].values["fid"]
    assert result.scores[1].values["fid"] * 10 < noisy
    assert np.isfinite(noisy)


def test_cas_tells_right_labels_from_scrambled_ones() -> None:
    from ganforge.metrics.cas import classification_accuracy_score

    data = load_dataset(DataConfig(name="digits"))
    order = torch.randperm(len(data.x), generator=torch.Generator().manual_seed(0))
    real, fake, test = order[:700], order[700:1400], order[1400:]  # "fake": real digits, a perfect generator
    args = (data.x[real], data.y[real], data.x[test], data.y[test], 10)
    good = classification_accuracy_score(data.x[fake], data.y[fake], *args, epochs=10)
    assert good["real_accuracy"] > 0.75 and abs(good["cas"] - good["real_accuracy"]) < 0.08, good
    scrambled = data.y[fake][torch.randperm(700, generator=torch.Generator().manual_seed(1))]
    bad = classification_accuracy_score(data.x[fake], scrambled, *args, epochs=10)
    assert bad["cas"] < 0.3 and bad["real_accuracy"] == good["real_accuracy"], bad


def test_inception_score_from_lenet_and_the_report_command(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("GANFORGE_CACHE", str(tmp_path / "cache"))
    run = tmp_path / "run"
    ganforge.train(
        preset="dcgan-digits",
        run_dir=run,
        overrides=[
            "training.steps=300",
            "nets.generator.options.width=16",
            "nets.discriminator.options.width=16",
            "logging.tensorboard=false",
        ],
    )
    assert main(["evaluate", str(run), "--metrics", "is,fid", "--n", "500"]) == 0
    out = capsys.readouterr().out
    assert "is[lenet:digits]" in out and "fid[lenet:digits]" in out
    score = read_evaluations(run)[0]
    assert 1.0 < score["values"]["is_mean"] <= 10.0  # between one class and all ten, evenly
    (run / "report.html").unlink()
    assert main(["report", str(run)]) == 0
    page = (run / "report.html").read_text()
    assert "is[lenet:digits]" in page and "data:image/png;base64," in page
    assert main(["report", str(tmp_path)]) == 2  # not a run folder
