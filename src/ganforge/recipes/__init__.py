"""GAN variants, one file each: nets, phases and losses. Registered in RECIPES."""

from ganforge.recipes import conditional, cyclegan, gan, lapgan, pix2pix, srgan, text  # noqa: F401  (registers the recipes)
from ganforge.recipes.base import RECIPES, Phase, Recipe, RecipeContext, build_recipe

__all__ = ["RECIPES", "Phase", "Recipe", "RecipeContext", "build_recipe"]
