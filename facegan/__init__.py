"""facegan: identity-preserving GANs for face inpainting and super-resolution.

Nothing heavy is imported here: `facegan --help` must stay fast, so torch and friends are
imported inside the functions that need them.
"""

__version__ = "0.1.0"
