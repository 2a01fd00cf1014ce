from .base import ProfileStore

__all__ = ["ProfileStore"]
