"""APE, the AMD Protocol Explorer: simulate, analyse and share anti-VEGF protocols for nAMD."""

__version__ = "0.1.0"
ENGINE_VERSION = "1.0.0"

__all__ = ["ENGINE_VERSION", "__version__"]
