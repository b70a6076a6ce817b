"""The audio-LLM policy: transformers' Qwen2-Audio behind one small interface.

:class:`AudioLLM` holds a ``Qwen2AudioForConditionalGeneration`` and its ``Qwen2AudioProcessor``
and offers what ALLD needs: batching (audio + instruction [+ response]) into model inputs with the
prompt and padding masked out of the labels, per-example summed response log-probs, the SFT loss,
and batched generation. Fine-tuning modes: ``"full"``, ``"lora"`` (peft, on the language model's
projections only, found by a regex; the audio encoder gets none) or ``"frozen"``; the audio
projector can be trained in any mode, the encoder can be frozen or trained.

Feature extraction always runs outside autocast (bf16 autocast breaks the Whisper STFT).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from speechbrain.utils.checkpoints import mark_as_loader, mark_as_saver, register_checkpoint_hooks

from speechbrain_alld.hub import (
    decoding_config,
    end_of_turn_token,
    hub_offline,
    resolve_dtype,
    stop_token_ids,
)
from speechbrain_alld.losses import IGNORE_INDEX, sequence_logprobs, sft_loss
from speechbrain_alld.models.audio_cache import (
    FeatureCache,
    LRUStore,
    cached_encoder,
    shared_audio,
)
from speechbrain_alld.models.chat import instruction_to_content, waveform_array
from speechbrain_alld.models.checkpoint_io import load_merged_model, save_weights

DEFAULT_LORA_TARGET = (r".*language_model.*\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|"
                       r"down_proj)$")
FINETUNE_MODES = ("full", "lora", "frozen")


@register_checkpoint_hooks
class AudioLLM(torch.nn.Module):
    """A Qwen2-Audio policy with its processor, fine-tuning mode and ALLD helpers.

    Arguments
    ---------
    model: a ``Qwen2AudioForConditionalGeneration``.
    processor: its ``Qwen2AudioProcessor``.
    finetune: ``"full"``, ``"lora"`` or ``"frozen"``.
    lora_r, lora_alpha, lora_dropout, lora_target: LoRA settings (``lora_target`` is a regex over
        module names; the default hits only the language model's projections).
    train_projector: train the audio projector (``multi_modal_projector``).
    train_encoder: train the audio encoder (``audio_tower``); frozen otherwise.
    gradient_checkpointing: trade compute for memory in the language model.
    system_prompt: the system message; ``None`` keeps the chat template's default.
    feature_cache_clips: keep the log-mel features of this many clips
        (:class:`~speechbrain_alld.models.audio_cache.FeatureCache`); 0: compute every time.
    encoder_cache_clips: with a frozen encoder, keep its output for this many clips
        (:func:`~speechbrain_alld.models.audio_cache.cached_encoder`); 0: encode every time.
    """

    def __init__(
        self,
        model: Any,
        processor: Any,
        *,
        finetune: str = "lora",
        lora_r: int = 8,
        lora_alpha: int = 16,
        lora_dropout: float = 0.05,
        lora_target: str = DEFAULT_LORA_TARGET,
        train_projector: bool = True,
        train_encoder: bool = False,
        gradient_checkpointing: bool = False,
        system_prompt: str | None = None,
        feature_cache_clips: int = 0,
        encoder_cache_clips: int = 0,
    ) -> None:
        super().__init__()
        if finetune not in FINETUNE_MODES:
            raise ValueError(f"finetune must be one of {FINETUNE_MODES}, got {finetune!r}")
        self.processor = processor
        self.tokenizer = processor.tokenizer
        self.finetune = finetune
        self.system_prompt = system_prompt
        fe = processor.feature_extractor
        # A saved sub-second or float chunk_length reloads as float sample counts: keep ints.
        fe.n_samples = int(round(fe.n_samples))
        fe.nb_max_frames = fe.n_samples // fe.hop_length
        self.sampling_rate = int(fe.sampling_rate)
        self.window_seconds = processor.feature_extractor.n_samples / self.sampling_rate
        self.feature_cache = FeatureCache(fe, feature_cache_clips) if feature_cache_clips else None
        # Responses end with the chat's end of turn; generation stops on it and on every EOS id
        # of the checkpoint. The checkpoint's own sampling defaults are kept aside and replaced
        # by a neutral config, so generate() (and a saved model) decodes only as asked.
        self.end_of_turn = end_of_turn_token(self.tokenizer)
        self.stop_ids = stop_token_ids(self.tokenizer, model.generation_config.eos_token_id,
                                       getattr(model.config, "eos_token_id", None))
        self.checkpoint_generation_config = model.generation_config
        model.generation_config = decoding_config(
            max_new_tokens=256, eos_token_id=self.stop_ids,
            pad_token_id=self.tokenizer.pad_token_id)
        if gradient_checkpointing:
            model.gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False})
            model.config.use_cache = False
        for p in model.parameters():
            p.requires_grad_(finetune == "full")
        if finetune == "lora":
            from peft import LoraConfig, get_peft_model

            config = LoraConfig(r=lora_r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                                target_modules=lora_target, bias="none")
            model = get_peft_model(model, config)
        self.model = model
        core = self.core_model
        for p in core.model.multi_modal_projector.parameters():
            p.requires_grad_(train_projector or finetune == "full")
        for p in core.model.audio_tower.parameters():
            p.requires_grad_(train_encoder)
        if encoder_cache_clips and train_encoder:
            raise ValueError("encoder_cache_clips needs a frozen encoder (train_encoder=False): "
                             "a trained encoder's output changes every step")
        self.encoder_cache = LRUStore(encoder_cache_clips) if encoder_cache_clips else None
        # Trainable weights stored in bf16/fp16 lose most small optimiser updates: keep them
        # in fp32 and run the model under autocast in its original half precision instead.
        self.compute_dtype: torch.dtype | None = None
        for p in self.model.parameters():
            if p.requires_grad and p.dtype in (torch.float16, torch.bfloat16):
                self.compute_dtype = self.compute_dtype or p.dtype
                p.data = p.data.float()
        if self.compute_dtype is None:
            half = {p.dtype for p in self.model.parameters()} & {torch.float16, torch.bfloat16}
            self.compute_dtype = next(iter(half)) if half else None

    # ----------------------------------------------------------------- construction
    @classmethod
    def from_pretrained(
        cls,
        source: str | Path,
        *,
        dtype: str | torch.dtype | None = "auto",
        device: str | None = None,
        local_files_only: bool | None = None,
        **kwargs: Any,
    ) -> AudioLLM:
        """Load model and processor from a local folder or a hub id (e.g. Qwen2-Audio-7B).

        A folder saved as a LoRA adapter (``save_pretrained(merge=False)``) is loaded onto its
        base model (``base_model_name_or_path`` in ``adapter_config.json``, itself possibly an
        adapter folder, e.g. ALLD's adapter over the SFT adapter) and merged.
        """
        from transformers import AutoProcessor

        if local_files_only is None:
            local_files_only = hub_offline()
        source = str(source)
        processor = AutoProcessor.from_pretrained(source, local_files_only=local_files_only)
        model = load_merged_model(source, resolve_dtype(dtype), local_files_only)
        if device is not None:
            model.to(device)
        return cls(model, processor, **kwargs)

    @property
    def core_model(self) -> Any:
        """The underlying ``Qwen2AudioForConditionalGeneration`` (inside peft in LoRA mode)."""
        return self.model.get_base_model() if self.finetune == "lora" else self.model

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def sharded(self) -> bool:
        """Whether the weights are sharded over processes (an FSDP2 module; between a forward
        and resharding some may be gathered)."""
        from torch.distributed.fsdp import FSDPModule

        return isinstance(self.core_model, FSDPModule)

    def trainable_parameters(self) -> dict[str, torch.nn.Parameter]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    # ----------------------------------------------------------------- batching
    def chat_prompt(self, instruction: str, n_audios: int) -> str:
        """The chat-formatted prompt (x_a) for an instruction with ``<audio>`` placeholders."""
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": instruction_to_content(instruction, n_audios)}]
        if self.system_prompt is not None:
            messages.insert(0, {"role": "system", "content": self.system_prompt})
        return self.processor.apply_chat_template(messages, add_generation_prompt=True,
                                                  tokenize=False)

    def response_ids(self, response: str) -> list[int]:
        """Token ids of a response followed by the end-of-turn token."""
        return self.tokenizer(response + self.end_of_turn, add_special_tokens=False)["input_ids"]

    def prepare_batch(
        self,
        audios: Sequence[Sequence[Any]],
        instructions: Sequence[str],
        responses: Sequence[str] | None = None,
        padding_side: str = "right",
    ) -> dict[str, torch.Tensor]:
        """Model inputs for a batch; with ``responses``, ``labels`` mask all but the response.

        ``audios[i]`` holds the 1-d 16 kHz waveforms of example i (one for the MOS task, two for
        A/B), ``instructions[i]`` the instruction with as many ``<audio>`` placeholders.
        """
        if len(audios) != len(instructions) or (responses is not None
                                                 and len(responses) != len(audios)):
            raise ValueError("audios, instructions and responses must have the same length")
        prompts = [self.chat_prompt(ins, len(a)) for ins, a in zip(instructions, audios)]
        flat = [waveform_array(w) for a in audios for w in a]
        for w in flat:
            if w.size == 0:
                raise ValueError("empty waveform in the batch")
        device_type = self.device.type if self.device.type in ("cuda", "cpu") else "cpu"
        with torch.autocast(device_type=device_type, enabled=False), self._cached_features():
            enc = self.processor(text=prompts, audio=flat, sampling_rate=self.sampling_rate,
                                 return_tensors="pt", padding=True)
        rows = [ids[mask.bool()].tolist() for ids, mask in zip(enc["input_ids"],
                                                                enc["attention_mask"])]
        labels_rows = [[IGNORE_INDEX] * len(r) for r in rows]
        if responses is not None:
            for k, resp in enumerate(responses):
                ids = self.response_ids(resp)
                rows[k] = rows[k] + ids
                labels_rows[k] = labels_rows[k] + ids
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
        attention = torch.zeros((len(rows), width), dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        for k, (r, lab) in enumerate(zip(rows, labels_rows)):
            sl = slice(0, len(r)) if padding_side == "right" else slice(width - len(r), width)
            input_ids[k, sl] = torch.tensor(r)
            attention[k, sl] = 1
            labels[k, sl] = torch.tensor(lab)
        batch = {
            "input_ids": input_ids,
            "attention_mask": attention,
            "input_features": enc["input_features"],
            "feature_attention_mask": enc["feature_attention_mask"],
        }
        if responses is not None:
            batch["labels"] = labels
        return {k: v.to(self.device) for k, v in batch.items()}

    @contextlib.contextmanager
    def _cached_features(self) -> Any:
        """While active, the processor takes its features from :attr:`feature_cache`."""
        if self.feature_cache is None:
            yield
            return
        self.processor.feature_extractor = self.feature_cache
        try:
            yield
        finally:
            self.processor.feature_extractor = self.feature_cache.extractor

    # ----------------------------------------------------------------- scoring
    def _autocast(self) -> Any:
        """Autocast to the model's half precision when it has one (fp32 master weights)."""
        if self.compute_dtype is None or torch.is_autocast_enabled(self.device.type):
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.compute_dtype)

    def forward(self, batch: dict[str, Any]) -> torch.Tensor:
        """Logits ``[B, T, V]`` for a batch from :meth:`prepare_batch`.

        ``batch["audio_repeats"] = k`` says the batch is k copies of one set of clips (ALLD's
        chosen and rejected responses share their clip): the audio encoder then runs on the
        first copy only and its output is reused for the others.
        """
        repeats = int(batch.get("audio_repeats", 1))
        inputs = {k: v for k, v in batch.items() if k not in ("labels", "audio_repeats")}
        features = inputs["input_features"]
        inputs["input_features"] = features.to(self._encoder_dtype())
        # The core model (LoRA layers are injected in it) rather than peft's wrapper: an
        # FSDP-sharded policy gathers its weights in the core model's forward hooks.
        tower = self.core_model.model.audio_tower
        with self._autocast(), cached_encoder(tower, self.encoder_cache), \
                shared_audio(tower, repeats):
            return self.core_model(**inputs, use_cache=False).logits

    def _encoder_dtype(self) -> torch.dtype:
        return next(self.core_model.model.audio_tower.parameters()).dtype

    def sequence_logprobs(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """Per-example summed log pi(response | audio, instruction) and response lengths."""
        return sequence_logprobs(self.forward(batch), batch["labels"])

    def sft_loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token-mean cross-entropy over the response tokens of the batch."""
        return sft_loss(self.forward(batch), batch["labels"])

    # ----------------------------------------------------------------- generation
    def decoding(self, *, max_new_tokens: int, do_sample: bool = False, temperature: float = 1.0,
                 top_p: float = 1.0, top_k: int = 0) -> Any:
        """The complete generation config :meth:`generate` decodes with (stop ids, padding and
        only the sampling asked for; see :func:`~speechbrain_alld.hub.decoding_config`)."""
        return decoding_config(max_new_tokens=max_new_tokens, do_sample=do_sample,
                               temperature=temperature, top_p=top_p, top_k=top_k,
                               eos_token_id=self.stop_ids,
                               pad_token_id=self.tokenizer.pad_token_id)

    @torch.no_grad()
    def generate(
        self,
        audios: Sequence[Sequence[Any]],
        instructions: Sequence[str],
        *,
        max_new_tokens: int = 128,
        do_sample: bool = False,
        temperature: float = 1.0,
        top_p: float = 1.0,
        top_k: int = 0,
        num_return_sequences: int = 1,
        return_finished: bool = False,
        synced_gpus: bool | None = None,
    ) -> list[str] | tuple[list[str], list[bool]]:
        """Generate responses for a batch in one ``generate`` call (left padded).

        With ``num_return_sequences`` = n > 1 the texts of example i are at ``[i * n, (i + 1)
        * n)``; the examples are repeated here rather than by transformers, which would repeat
        the audio features per audio instead of per example and mix up A/B pairs. With
        ``return_finished`` also returns, per text, whether it ended with the end of turn or
        another of the checkpoint's EOS ids (``False``: cut off by ``max_new_tokens``).
        Decoding uses :func:`~speechbrain_alld.hub.decoding_config`: greedy is plain argmax,
        sampling exactly ``temperature`` / ``top_p`` (``top_k`` only when > 0), whatever the
        checkpoint's ``generation_config`` says. ``synced_gpus`` (default: when the policy is
        sharded over several processes) keeps every process stepping until all are done, as
        each step of a sharded model gathers weights from all of them.
        """
        n = num_return_sequences
        if n < 1:
            raise ValueError(f"num_return_sequences must be >= 1, got {n}")
        if n > 1:
            audios = [a for a in audios for _ in range(n)]
            instructions = [i for i in instructions for _ in range(n)]
        batch = self.prepare_batch(audios, instructions, padding_side="left")
        batch["input_features"] = batch["input_features"].to(self._encoder_dtype())
        config = self.decoding(max_new_tokens=max_new_tokens, do_sample=do_sample,
                               temperature=temperature, top_p=top_p, top_k=top_k)
        was_training = self.model.training
        self.model.eval()
        try:
            with self._autocast():
                out = self.model.generate(**batch, generation_config=config,
                                          synced_gpus=self.sharded if synced_gpus is None
                                          else synced_gpus)
        finally:
            self.model.train(was_training)
        new_tokens = out[:, batch["input_ids"].shape[1]:]
        texts = [t.strip() for t in self.tokenizer.batch_decode(new_tokens,
                                                                skip_special_tokens=True)]
        if not return_finished:
            return texts
        stops = torch.tensor(self.stop_ids, device=new_tokens.device)
        finished = torch.isin(new_tokens, stops).any(dim=1).tolist()
        return texts, finished

    # ----------------------------------------------------------------- saving
    @mark_as_saver
    def save_trainable(self, path: str | Path) -> None:
        """SpeechBrain checkpoint hook: only the trainable parameters, as safetensors."""
        from safetensors.torch import save_file

        tensors = {n: p.detach().contiguous().cpu() for n, p in self.named_parameters()
                   if p.requires_grad}
        save_file(tensors, str(path), metadata={"finetune": self.finetune})

    @mark_as_loader
    def load_trainable(self, path: str | Path, end_of_epoch: bool = False) -> None:
        """SpeechBrain checkpoint hook: restore the trainable parameters saved above."""
        from safetensors.torch import load_file

        tensors = load_file(str(path))
        params = dict(self.named_parameters())
        unknown = sorted(set(tensors) - set(params))
        missing = sorted(n for n, p in params.items() if p.requires_grad and n not in tensors)
        if unknown or missing:
            raise RuntimeError(f"checkpoint {path} does not match this model's trainable "
                               f"parameters (unknown: {unknown[:5]}, missing: {missing[:5]}); "
                               "was it saved with other fine-tuning settings?")
        with torch.no_grad():
            for name, value in tensors.items():
                params[name].copy_(value.to(params[name].device, params[name].dtype))

    def save_pretrained(self, folder: str | Path, merge: bool = True,
                        state_dict: dict[str, torch.Tensor] | None = None) -> Path:
        """Save in Hugging Face format with the processor, in the model's own precision.

        - ``full`` / ``frozen``: the weights cast to the compute dtype (trainable weights are
          kept in fp32 only for the optimiser), so a bf16 checkpoint stays bf16.
        - ``lora`` with ``merge``: each adapted weight is merged (base + the adapter's delta)
          one tensor at a time into a CPU state dict: no second copy of the model on its device.
        - ``lora`` without ``merge``: the adapter, plus the other trained weights
          (``extra_trainable.safetensors``); its ``base_model_name_or_path`` is the folder or
          hub id this policy was loaded from, so an adapter trained on a merged SFT adapter
          reloads onto the SFT model, not onto the raw base.

        ``state_dict`` (keys relative to :attr:`core_model`) replaces the model's own, e.g. the
        full weights of an FSDP-sharded policy gathered on the CPU
        (:func:`~speechbrain_alld.sharding.gathered_state_dict`).
        """
        folder = Path(folder)
        save_weights(self.model, self.core_model, folder, lora=self.finetune == "lora",
                     merge=merge, dtype=self.compute_dtype, state=state_dict,
                     trainable={n for n, p in self.core_model.named_parameters()
                                if p.requires_grad})
        self.processor.save_pretrained(folder)
        return folder
