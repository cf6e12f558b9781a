"""A class-conditional diffusion model in feature space, trained on a dataset's own audio/vision features.

Each row's feature columns ([frames, size] arrays, or [size] vectors) are mean-pooled over frames, concatenated
and standardised with the dataset's statistics. A small MLP denoiser (a diffusers `ModelMixin`) learns to predict
the noise that diffusers' `DDPMScheduler` adds, conditioned on the timestep and on the row's label bin; it is saved
in the cache, so other strengths or sample counts reuse it. A variant of a row is generated like diffusers' img2img:
its vector is noised to `strength` of the DDIM schedule and denoised under its own bin (strength 1.0 samples the
bin afresh). The variant's frames are the source frames shifted so that their mean is the generated vector, which
keeps the source's dynamics over time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from diffusers import ConfigMixin, DDIMScheduler, DDPMScheduler, ModelMixin
from diffusers.configuration_utils import register_to_config
from diffusers.models.embeddings import TimestepEmbedding, Timesteps
from torch import nn

TRAIN_TIMESTEPS = 1000
BATCH_SIZE = 128
LEARNING_RATE = 1e-3
TIME_CHANNELS = 64
RESIDUAL_BLOCKS = 2


def pooled(value) -> np.ndarray | None:
    """The utterance-level vector of one row's feature column (the mean over frames of a [frames, size] array);
    None when the value is not finite features [frames, size] or [size]."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 2 and len(array) > 0:
        array = array.mean(axis=0)
    if array.ndim != 1 or array.size == 0 or not np.isfinite(array).all():
        return None
    return array


def with_mean(value, vector: np.ndarray) -> list:
    """`value`'s frames shifted so that their mean is `vector` (a [size] value becomes `vector`)."""
    array = np.asarray(value, dtype=np.float32)
    if array.ndim == 1:
        return vector.tolist()
    return (array - array.mean(axis=0) + vector).tolist()


class FeatureDenoiser(ModelMixin, ConfigMixin):
    """Predicts the noise in a noised feature vector, given the timestep and the label bin."""

    @register_to_config
    def __init__(self, feature_size: int, num_bins: int, hidden_size: int = 256):
        super().__init__()
        self.time_proj = Timesteps(TIME_CHANNELS, flip_sin_to_cos=True, downscale_freq_shift=0)
        self.time_embedding = TimestepEmbedding(TIME_CHANNELS, hidden_size)
        self.bin_embedding = nn.Embedding(num_bins, hidden_size)
        self.input = nn.Linear(feature_size, hidden_size)
        self.blocks = nn.ModuleList(
            nn.Sequential(
                nn.SiLU(), nn.Linear(hidden_size, hidden_size), nn.SiLU(), nn.Linear(hidden_size, hidden_size)
            )
            for _ in range(RESIDUAL_BLOCKS)
        )
        self.output = nn.Sequential(nn.SiLU(), nn.Linear(hidden_size, feature_size))

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, bins: torch.Tensor) -> torch.Tensor:
        timestep = timestep.expand(len(sample)) if timestep.ndim == 0 else timestep
        condition = self.time_embedding(self.time_proj(timestep).to(sample.dtype)) + self.bin_embedding(bins)
        hidden = self.input(sample) + condition
        for block in self.blocks:
            hidden = hidden + block(hidden + condition)
        return self.output(hidden)


class FeatureDiffusion:
    """Fit on standardised pooled vectors and their bins, then generate variants of given vectors."""

    def __init__(self, vectors: np.ndarray, bins: Sequence[int], num_bins: int, hidden_size: int, seed: int):
        self.mean, spread = vectors.mean(axis=0), vectors.std(axis=0)
        self.std = np.where(spread > 1e-6, spread, 1.0)  # a constant feature stays constant
        self.data = torch.from_numpy((vectors - self.mean) / self.std).float()
        self.bins = torch.as_tensor(list(bins), dtype=torch.long)
        self.training_generator = torch.Generator().manual_seed(seed)
        # Sampling draws from its own stream, so a denoiser loaded from the cache samples as a freshly trained one.
        self.sampling_generator = torch.Generator().manual_seed(seed + 1)
        torch.manual_seed(seed)  # the denoiser's initial weights
        self.denoiser = FeatureDenoiser(vectors.shape[1], num_bins, hidden_size)
        self.scheduler = DDPMScheduler(
            num_train_timesteps=TRAIN_TIMESTEPS, beta_schedule="squaredcos_cap_v2", clip_sample=False
        )

    def fit(self, steps: int) -> list[float]:
        """Train the denoiser for `steps` batches; the loss of each step."""
        optimizer = torch.optim.AdamW(self.denoiser.parameters(), lr=LEARNING_RATE)
        self.denoiser.train()
        losses = []
        for _ in range(steps):
            batch = (min(BATCH_SIZE, len(self.data)),)
            index = torch.randint(len(self.data), batch, generator=self.training_generator)
            clean = self.data[index]
            noise = torch.randn(clean.shape, generator=self.training_generator)
            timesteps = torch.randint(TRAIN_TIMESTEPS, (len(clean),), generator=self.training_generator)
            predicted = self.denoiser(self.scheduler.add_noise(clean, noise, timesteps), timesteps, self.bins[index])
            loss = nn.functional.mse_loss(predicted, noise)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        self.denoiser.eval()
        return losses

    def fit_or_load(self, steps: int, folder: Path) -> None:
        """Train the denoiser and save it to `folder`, or load it from there when an earlier run saved it."""
        if (folder / "config.json").is_file():
            self.denoiser = FeatureDenoiser.from_pretrained(folder).eval()
            return
        self.fit(steps)
        self.denoiser.save_pretrained(folder)

    @torch.no_grad()
    def variants(self, vectors: np.ndarray, bins: Sequence[int], strength: float, inference_steps: int) -> np.ndarray:
        """A generated vector per row of `vectors` (in their original scale), denoised under its bin."""
        scheduler = DDIMScheduler.from_config(self.scheduler.config)
        scheduler.set_timesteps(inference_steps)
        timesteps = scheduler.timesteps[inference_steps - max(1, round(inference_steps * strength)) :]
        clean = torch.from_numpy((vectors - self.mean) / self.std).float()
        noise = torch.randn(clean.shape, generator=self.sampling_generator)
        sample = scheduler.add_noise(clean, noise, timesteps[:1]) if strength < 1.0 else noise
        bins = torch.as_tensor(list(bins), dtype=torch.long)
        for timestep in timesteps:
            sample = scheduler.step(self.denoiser(sample, timestep, bins), timestep, sample).prev_sample
        return sample.numpy() * self.std + self.mean
