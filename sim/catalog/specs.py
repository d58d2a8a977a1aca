"""Typed records of the catalog: accelerators and models.

One definition serves the built-in catalog files (``sim/catalog/data/*.yaml``) and the custom entries a
scenario adds inline, so both are checked the same way. Units are in the field names, as in the YAML.
Built-in entries must carry a source for every number (``sources``); a scenario's own entries may omit
them, since the user is the source.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

STACKS = ("cuda", "rocm", "xla", "neuron", "mtia", "maia", "habana", "portable")


class AcceleratorSpec(BaseModel):
    """One accelerator chip type: peak rates, memory, power, fabric, prices and software stacks."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="name used in scenarios, e.g. 'h100-sxm'")
    display_name: str = Field("", description="human-readable name")
    vendor: str = Field("custom", description="nvidia, amd, google, meta, aws, microsoft, intel, ...")
    kind: Literal["gpu", "tpu", "asic"] = Field("gpu", description="accelerator family")
    year: int | None = Field(None, description="first year of volume availability")
    bf16_tflops: float = Field(gt=0, description="dense peak BF16/FP16 matrix rate [TFLOP/s]")
    fp8_tflops: float | None = Field(None, gt=0, description="dense peak FP8 rate [TFLOP/s]")
    int8_tops: float | None = Field(None, gt=0, description="dense peak INT8 rate [TOP/s]")
    memory_gb: float = Field(gt=0, description="device memory [GB, decimal]")
    memory_bandwidth_tbps: float = Field(gt=0, description="device memory bandwidth [TB/s]")
    sram_mb: float | None = Field(None, ge=0, description="on-chip SRAM or cache [MB]")
    sram_bandwidth_tbps: float | None = Field(None, gt=0, description="on-chip SRAM or cache bandwidth [TB/s]")
    tdp_w: float = Field(gt=0, description="thermal design power per chip [W]")
    idle_w: float = Field(ge=0, description="power of a powered-on idle chip [W]")
    scale_up_bandwidth_gbps: float = Field(gt=0, description="fast-fabric bandwidth per chip, bidirectional [GB/s]")
    scale_up_domain_chips: int = Field(gt=0, description="chips joined by the fast fabric in one domain")
    scale_out_bandwidth_gbps: float = Field(gt=0, description="data-center network bandwidth per chip [GB/s]")
    torus_dimensions: int | None = Field(
        None, ge=1, le=3, description="dimensions of the inter-chip torus a slice forms (TPU: 2 or 3); none: a "
                                      "switched scale-up fabric (NVLink, ...)")
    pod_chips: int | None = Field(None, gt=0, description="chips one inter-chip fabric joins (a TPU pod)")
    max_slice_chips: int | None = Field(
        None, gt=0, description="chips of the largest slice one job can get on the torus (the pod, or less)")
    cooling: Literal["air", "liquid"] = Field("air", description="cooling as usually shipped")
    price_usd: float | None = Field(None, ge=0, description="purchase price per chip [USD]")
    cloud_usd_per_chip_hour: float | None = Field(None, ge=0, description="on-demand rental [USD/chip-hour]")
    cloud_reserved_1y_usd_per_chip_hour: float | None = Field(
        None, ge=0, description="rental under a 1-year commitment (committed-use, reserved or savings-plan rate) "
                                "[USD/chip-hour]")
    cloud_reserved_3y_usd_per_chip_hour: float | None = Field(
        None, ge=0, description="rental under a 3-year commitment [USD/chip-hour]")
    stacks: dict[str, float] = Field(description="software stack -> fraction of dense peak achieved (0..1]")
    serving_layer_overhead_us: float | None = Field(
        None, ge=0, description="fixed cost per transformer layer and serving iteration: kernel launches, "
        "synchronisation [µs]; fitted on measurements where available (None: the iteration model's default)")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> source key or 'estimate: ...'")
    notes: str = Field("", description="what is estimated or uncertain")

    @model_validator(mode="after")
    def _consistent(self):
        if self.idle_w > self.tdp_w:
            raise ValueError(f"idle_w ({self.idle_w:g}) must not exceed tdp_w ({self.tdp_w:g})")
        unknown = [s for s in self.stacks if s not in STACKS]
        if unknown:
            raise ValueError(f"unknown stack(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(STACKS)}")
        bad = [f"{s}={e:g}" for s, e in self.stacks.items() if not 0 < e <= 1]
        if bad:
            raise ValueError(f"stack efficiencies must be in (0, 1]: {', '.join(bad)}")
        if not self.stacks:
            raise ValueError("an accelerator runs at least one stack (e.g. {portable: 0.3})")
        torus = (self.torus_dimensions, self.pod_chips, self.max_slice_chips)
        if any(v is not None for v in torus) and any(v is None for v in torus):
            raise ValueError("a torus fabric needs torus_dimensions, pod_chips and max_slice_chips together")
        if self.max_slice_chips is not None and self.max_slice_chips > self.pod_chips:
            raise ValueError(f"max_slice_chips ({self.max_slice_chips}) must not exceed pod_chips ({self.pod_chips})")
        return self

    def stack_efficiency(self, stack: str) -> float:
        """Fraction of peak this chip reaches for a job written for ``stack`` (0 when not supported)."""
        return self.stacks.get(stack, 0.0)

    @property
    def peak_flops(self) -> float:
        """Dense BF16 peak [FLOP/s]."""
        return self.bf16_tflops * 1e12


class ModelSpec(BaseModel):
    """One ML model: size and FLOPs per sample (token, image, ...) for training and inference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(description="name used in scenarios, e.g. 'llama3-70b'")
    display_name: str = Field("", description="human-readable name")
    family: Literal["llm", "ranking", "vision", "nlp"] = Field("llm", description="model family")
    params: float = Field(gt=0, description="total parameters")
    sample_unit: Literal["token", "image", "sample", "sequence"] = Field("token", description="what one sample is")
    train_flop_per_sample: float = Field(gt=0, description="forward+backward FLOP per sample")
    infer_flop_per_sample: float = Field(gt=0, description="forward FLOP per sample")
    train_bytes_per_param: float = Field(16.0, gt=0, description="training state per parameter [B]")
    activation_bytes_per_sample: float = Field(ge=0, description="activation memory per sample in flight [B]")
    microbatch_samples: float = Field(gt=0, description="samples resident per chip per micro-step")
    kv_bytes_per_token: float = Field(0.0, ge=0, description="KV-cache bytes per token of context [B] (LLMs)")
    embedding_params: float = Field(0.0, ge=0, description="parameters in embedding tables (part of params)")
    embedding_bytes: float = Field(0.0, ge=0, description="embedding-table bytes as stored (recommendation models)")
    layers: int | None = Field(None, gt=0, description="transformer layers (LLMs; for per-layer serving costs)")
    hidden_size: int | None = Field(None, gt=0, description="model width d_model (LLMs; for tensor-parallel traffic)")
    attention_heads: int | None = Field(None, gt=0, description="attention heads (LLMs; bounds tensor parallelism)")
    active_params: float | None = Field(None, gt=0, description="parameters used per token (mixture-of-experts; "
                                                                 "training FLOPs come from these) [default: params]")
    experts: int = Field(0, ge=0, description="routed experts per MoE layer (0 = dense)")
    experts_per_token: int = Field(0, ge=0, description="routed experts each token uses (MoE)")
    embedding_dim: int = Field(0, ge=0, description="values per embedding row (ranking models)")
    lookups_per_item: float = Field(0.0, ge=0, description="embedding rows read per scored item (ranking models)")
    embedding_zipf_alpha: float = Field(0.0, ge=0, description="power-law exponent of embedding-row popularity [-]")
    sources: dict[str, str] = Field(default_factory=dict, description="field -> source key or 'estimate: ...'")
    notes: str = Field("", description="what is estimated or uncertain")

    @model_validator(mode="after")
    def _experts_consistent(self):
        if self.active_params is not None and self.active_params > self.params:
            raise ValueError(f"active_params {self.active_params:.3g} exceeds params {self.params:.3g}")
        if self.experts_per_token > self.experts:
            raise ValueError(f"experts_per_token {self.experts_per_token} exceeds experts {self.experts}")
        if self.experts and not (self.experts_per_token and self.active_params is not None):
            raise ValueError("a mixture-of-experts model (experts > 0) needs experts_per_token and active_params")
        return self

    @property
    def activated_params(self) -> float:
        """Parameters each token uses: ``active_params`` for a mixture of experts, else ``params``."""
        return self.params if self.active_params is None else self.active_params

    @property
    def expert_params(self) -> float:
        """Parameters in routed experts (0 for a dense model), from total N, active Na, E experts, k per token:
        one expert's parameters are (N − Na)/(E − k), so the experts hold E·(N − Na)/(E − k)."""
        if not self.experts or self.experts == self.experts_per_token:
            return 0.0
        return self.experts * (self.params - self.activated_params) / (self.experts - self.experts_per_token)

    @property
    def heads(self) -> int:
        """Attention heads: ``attention_heads``, else hidden/128 (the common head dimension)."""
        if self.attention_heads is not None:
            return self.attention_heads
        return max(1, (self.hidden_size or 128) // 128)

    @property
    def has_layout(self) -> bool:
        """A transformer with layers and hidden size: the step-time model (parallel layouts) applies."""
        return self.layers is not None and self.hidden_size is not None
