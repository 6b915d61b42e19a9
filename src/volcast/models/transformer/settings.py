"""The transformer's settings: the neural path's shared ones, and the encoder's size."""

from pydantic import Field, ValidationInfo, field_validator

from volcast.models.lstm.settings import NeuralSettings


class TransformerSettings(NeuralSettings):
    lookback: int = Field(336, ge=24, le=4096, description="past candles the model reads, a "
                          "whole number of patches")
    learning_rate: float = Field(1e-3, gt=0.0, le=1.0)
    patch_len: int = Field(24, ge=1, le=168, description="candles per patch, the encoder's "
                           "token")
    d_model: int = Field(32, ge=8, le=512, description="width of a token")
    heads: int = Field(4, ge=1, le=16, description="attention heads; d_model is a multiple")
    layers: int = Field(2, ge=1, le=6, description="encoder layers")

    @field_validator("patch_len")
    @classmethod
    def _whole_patches(cls, patch_len: int, info: ValidationInfo) -> int:
        lookback = info.data.get("lookback", patch_len)
        if lookback % patch_len:
            raise ValueError(f"the lookback ({lookback}) must be a whole number of patches of "
                             f"{patch_len} candles")
        return patch_len

    @field_validator("heads")
    @classmethod
    def _heads_divide_the_width(cls, heads: int, info: ValidationInfo) -> int:
        width = info.data.get("d_model", heads)
        if width % heads:
            raise ValueError(f"d_model ({width}) must be a multiple of the heads ({heads})")
        return heads
