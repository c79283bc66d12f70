"""Network building blocks and architectures, one file per family, all in the NETS registry."""

from ganforge.nets import conditional, cyclegan, dcgan, lapgan, mlp, srresnet, text, unet  # noqa: F401  (registers the nets)
from ganforge.nets.base import NETS, assert_shape, build_net, configurable, translates

__all__ = ["NETS", "assert_shape", "build_net", "configurable", "translates"]
