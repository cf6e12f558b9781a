"""A NumPy video processor for Qwen2-VL, Qwen2.5-VL and Qwen2.5-Omni, for machines without torchvision.

transformers' `Qwen2VLVideoProcessor` imports torchvision, whose wheels here are CUDA-only. This one takes
decoded frames ([frames, height, width, 3] arrays or lists of frames), resizes, rescales and normalises each
frame with the PIL/NumPy `Qwen2VLImageProcessorPil`, and lays patches out exactly like the torchvision
processor: groups of `temporal_patch_size` frames (the last frame repeated to fill a group), merged in
`merge_size`² blocks. It does not decode video files: pass frames.
"""

from __future__ import annotations

import numpy as np
from transformers import Qwen2_5_VLProcessor, Qwen2_5OmniProcessor, Qwen2VLProcessor
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import SizeDict
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.video_processing_utils import VideoProcessorMixin
from transformers.video_utils import VideoMetadata, make_batched_videos

VIDEO_SIZE = {"shortest_edge": 128 * 28 * 28, "longest_edge": 768 * 28 * 28}


class Qwen2VLVideoProcessorNumpy(VideoProcessorMixin):
    model_input_names = ["pixel_values_videos", "video_grid_thw"]
    fps = 2.0  # the rate the frames were sampled at (Qwen's default): Qwen2.5-VL's temporal position ids follow it

    def __init__(
        self, size: dict | None = None, patch_size: int = 14, temporal_patch_size: int = 2, merge_size: int = 2
    ):
        super().__init__()
        self.size = dict(size or VIDEO_SIZE)
        self.patch_size, self.temporal_patch_size, self.merge_size = patch_size, temporal_patch_size, merge_size
        self.frame_processor = Qwen2VLImageProcessorPil(
            size=self.size, patch_size=patch_size, temporal_patch_size=temporal_patch_size, merge_size=merge_size
        )

    def __call__(self, videos, return_tensors=None, **kwargs) -> BatchFeature:
        patches, grids, metadata = [], [], []
        for video in make_batched_videos(videos):
            if isinstance(video, str):
                raise ValueError(
                    f"{type(self).__name__} cannot decode the video file {video!r}: pass its frames as an array "
                    "[frames, height, width, 3] (or install torchvision and a video backend for Qwen2VLVideoProcessor)"
                )
            video_patches, grid = self.patchify(self.prepare_frames(np.asarray(video)))
            patches.append(video_patches)
            grids.append(grid)
            metadata.append(VideoMetadata(total_num_frames=len(video), fps=self.fps))
        data = {"pixel_values_videos": np.concatenate(patches), "video_grid_thw": np.array(grids, dtype=np.int64)}
        return BatchFeature(data=data | {"video_metadata": metadata}, tensor_type=return_tensors)

    def prepare_frames(self, video: np.ndarray) -> np.ndarray:
        """[T, H, W, C] (or [T, C, H, W]) frames → resized, rescaled, normalised [T, C, H', W'] float32."""
        if video.ndim != 4 or 3 not in (video.shape[1], video.shape[-1]):
            raise ValueError(f"expected video frames [frames, height, width, 3], got an array of shape {video.shape}")
        frames = video if video.shape[1] == 3 and video.shape[-1] != 3 else video.transpose(0, 3, 1, 2)
        processor = self.frame_processor
        size = SizeDict(**self.size)
        prepared = []
        for frame in frames:
            frame = processor.resize(
                frame, size=size, resample=processor.resample, factor=self.patch_size * self.merge_size
            )
            frame = processor.rescale(frame.astype(np.float32), processor.rescale_factor)
            prepared.append(processor.normalize(frame, processor.image_mean, processor.image_std))
        return np.stack(prepared).astype(np.float32)

    def patchify(self, frames: np.ndarray) -> tuple[np.ndarray, list[int]]:
        if pad := -len(frames) % self.temporal_patch_size:
            frames = np.concatenate([frames, np.repeat(frames[-1:], pad, axis=0)])
        num_frames, channels, height, width = frames.shape
        p, m, t = self.patch_size, self.merge_size, self.temporal_patch_size
        grid_t, grid_h, grid_w = num_frames // t, height // p, width // p
        patches = frames.reshape(grid_t, t, channels, grid_h // m, m, p, grid_w // m, m, p)
        patches = patches.transpose(0, 3, 6, 4, 7, 2, 1, 5, 8)
        return patches.reshape(grid_t * grid_h * grid_w, channels * t * p * p), [grid_t, grid_h, grid_w]

    @classmethod
    def from_dict(cls, config: dict, **kwargs) -> Qwen2VLVideoProcessorNumpy:
        """From a saved video (or, in older Qwen checkpoints, image) processor config: `size` or min/max_pixels."""
        size = config.get("size")
        if size is None and "min_pixels" in config:
            size = {"shortest_edge": config["min_pixels"], "longest_edge": config["max_pixels"]}
        layout = {k: config[k] for k in ("patch_size", "temporal_patch_size", "merge_size") if k in config}
        return cls(size=size, **layout)

    def to_dict(self) -> dict:
        """The settings as transformers' `Qwen2VLVideoProcessor` reads them, so a saved folder loads with either."""
        return {
            "video_processor_type": "Qwen2VLVideoProcessor",
            "size": self.size,
            "patch_size": self.patch_size,
            "temporal_patch_size": self.temporal_patch_size,
            "merge_size": self.merge_size,
        }

    def get_num_of_video_patches(self, num_frames: int, height: int, width: int, videos_kwargs=None) -> int:
        grid_t = -(-num_frames // self.temporal_patch_size)
        return grid_t * self.frame_processor.get_number_of_image_patches(height, width, videos_kwargs)


class AcceptsNumpyVideoProcessor:
    """Processor mixin: transformers' type check knows video processors only when torchvision is installed."""

    def check_argument_for_proper_class(self, argument_name, argument):
        if isinstance(argument, Qwen2VLVideoProcessorNumpy):
            return Qwen2VLVideoProcessorNumpy
        return super().check_argument_for_proper_class(argument_name, argument)

    def to_dict(self) -> dict:
        # Saved as the transformers processor it extends, so AutoProcessor (with torchvision) loads the folder.
        return super().to_dict() | {"processor_class": type(self).__bases__[-1].__name__}


class Qwen2VLProcessorNumpyVideo(AcceptsNumpyVideoProcessor, Qwen2VLProcessor):
    pass


class Qwen2_5_VLProcessorNumpyVideo(AcceptsNumpyVideoProcessor, Qwen2_5_VLProcessor):
    pass


class Qwen2_5OmniProcessorNumpyVideo(AcceptsNumpyVideoProcessor, Qwen2_5OmniProcessor):
    pass
