"""ganforge: train, evaluate and use Generative Adversarial Networks."""

__version__ = "0.1.0"

from ganforge.api import resume, train  # noqa: E402
from ganforge.config import RunConfig, resolve  # noqa: E402
from ganforge.engine import Callback, Trainer, TrainResult  # noqa: E402
from ganforge.errors import TrainingDiverged, UserError  # noqa: E402
from ganforge.sampling import Sampler, load_generator  # noqa: E402
from ganforge.tabular import TabularGAN  # noqa: E402
from ganforge.translation import Translator, load_translator, translate_folder  # noqa: E402

__all__ = [
    "Callback",
    "RunConfig",
    "Sampler",
    "TabularGAN",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "Translator",
    "UserError",
    "__version__",
    "load_generator",
    "load_translator",
    "resolve",
    "resume",
    "train",
    "translate_folder",
]
