"""GRPO with audio, video, image or feature inputs that TRL's GRPOTrainer (images only) does not carry.

A `PromptEncoder` (hintgrpo.multimodal) moves each row's media into its prompt as content blocks, so every
prompt TRL and the hint code build or copy keeps its media. Prompts are encoded one row at a time; the
media model inputs of the rows generated together are batched for `generate`, and after generation each
final row's inputs are kept in the batch under `media` (a per-row list, which TRL shuffles and splits with
the other fields). Every log-probability pass (old, reference, and the loss) then gets exactly its rows'
media, so the loss sees the same inputs (for the MSE-Adapter: the same pseudo tokens) that generation saw.
"""

from __future__ import annotations

import torch
from trl import GRPOTrainer

from hintgrpo.multimodal.adapter import MSEAdapterCheckpoints, check_adapter_training
from hintgrpo.multimodal.inputs import PromptEncoder, collate_media
from hintgrpo.trainers.hint_grpo import HintGRPOTrainer

MEDIA = "media"
# Model-config ids of the tokens a processor expands into (or opens) a medium's span.
MEDIA_TOKEN_IDS = (
    "image_token_id",
    "video_token_id",
    "audio_token_id",
    "vision_start_token_id",
    "audio_start_token_id",
)


class ForwardWithMedia:
    """Calls `model` with the media of the next rows: TRL's log-probability loop runs its chunks in row order."""

    def __init__(self, model, media: list[dict], encoder: PromptEncoder, device):
        self.model, self.media, self.encoder, self.device = model, media, encoder, device
        self.offset = 0

    def __call__(self, input_ids: torch.Tensor, **kwargs):
        rows = self.media[self.offset : self.offset + input_ids.size(0)]
        self.offset += input_ids.size(0)
        media = {name: value.to(self.device) for name, value in collate_media(rows).items()}
        return self.model(input_ids=input_ids, **kwargs, **media, **self.encoder.token_fields(input_ids))


class MultimodalGRPOMixin(MSEAdapterCheckpoints):
    """Carries the media of `prompt_encoder` through generation and every log-probability pass."""

    def __init__(self, model, *args, prompt_encoder: PromptEncoder, **kwargs):
        check_adapter_training(model, kwargs.get("args"), kwargs.get("peft_config"))
        super().__init__(model, *args, **kwargs)
        if self.use_vllm or self.use_transformers_continuous_batching:
            raise ValueError(f"{type(self).__name__} generates with transformers only: media reach vLLM as images only")
        if self.tools or self.rollout_func is not None:
            raise ValueError(f"{type(self).__name__} does not support tools or a custom rollout_func")
        columns = set(getattr(self.train_dataset, "column_names", None) or [])
        if ignored := sorted(columns & {"image", "images"} - set(prompt_encoder.modalities)):
            raise ValueError(
                f"the dataset has {ignored} columns that the prompt encoder does not take (it takes "
                f"{list(prompt_encoder.modalities)}): add them to its modalities or remove them"
            )
        self.prompt_encoder = prompt_encoder
        self._media: list[dict] | None = None
        # A sampled media token would count as media the row lacks when the loss pass builds Qwen's 3D positions
        # (TRL suppresses the image token only).
        config = self.accelerator.unwrap_model(self.model).config
        media_tokens = {getattr(config, name, None) for name in MEDIA_TOKEN_IDS} - {None}
        suppressed = sorted(set(self.generation_config.suppress_tokens or []) | media_tokens)
        self.generation_config.suppress_tokens = suppressed or None

    def _generate_and_score_completions(self, inputs):
        inputs = [self.prompt_encoder.attach(row) for row in inputs]
        try:
            output = super()._generate_and_score_completions(inputs)
            output[MEDIA] = self._media
        finally:
            self._media = None
        return output

    def _tokenize_prompts(self, prompts: list):
        encoded = [self.prompt_encoder.encode(prompt) for prompt in prompts]
        return [e.ids for e in encoded], None, collate_media([e.media for e in encoded])

    def _generate_single_turn(self, prompt_ids, images, multimodal_fields, num_generations, has_tool_images=False):
        # Per-token inputs follow the ids generation starts from (a hint prefix included), as lists TRL left-pads.
        fields = dict(multimodal_fields)
        for ids in prompt_ids:
            for name, value in self.prompt_encoder.token_fields(torch.tensor([list(ids)])).items():
                fields.setdefault(name, []).append(value[0].tolist())
        return super()._generate_single_turn(prompt_ids, images, fields, num_generations, has_tool_images)

    def _generate(self, prompts: list):
        generated = super()._generate(prompts)
        # The rows as they finally stand (hinted or refilled rows included): their media feed every forward pass.
        self._media = [self.prompt_encoder.encode(prompt).media for prompt in prompts]
        return generated

    def _compute_loss(self, model, inputs):
        self._media = inputs[MEDIA]
        try:
            return super()._compute_loss(model, inputs)
        finally:
            self._media = None

    def _get_per_token_logps_and_entropies(self, model, input_ids, *args, **kwargs):
        if self._media is not None:
            model = ForwardWithMedia(model, self._media, self.prompt_encoder, self.accelerator.device)
        return super()._get_per_token_logps_and_entropies(model, input_ids, *args, **kwargs)


class MultimodalGRPOTrainer(MultimodalGRPOMixin, GRPOTrainer):
    """`trl.GRPOTrainer` with media; `MultimodalGRPOTrainer(..., prompt_encoder=...)`."""


class MultimodalHintGRPOTrainer(MultimodalGRPOMixin, HintGRPOTrainer):
    """`HintGRPOTrainer` with media: hinted and refilled rows keep (or get) their rows' media."""

    carries_media = True

    def _regenerate(self, rows, prompts, inputs, generation, mode):
        for row in rows:  # a refilled row is a fresh dataset row whose media are still columns
            inputs[row] = self.prompt_encoder.attach(inputs[row])
            prompts[row] = inputs[row]["prompt"]
        super()._regenerate(rows, prompts, inputs, generation, mode)
