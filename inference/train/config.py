"""How the shipped mini pair is trained: one frozen config, recorded in the weights' manifest."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from inference.mini import MiniShape
from inference.train.drill import DRILLS


@dataclass(frozen=True)
class TrainConfig:
    seed: int = 1234
    shape: MiniShape = field(default_factory=MiniShape)
    threads: int = 2  # the shipped pair's, trained alone on 2 vCPUs (48-55 min); the thread count changes the order of
    # float sums, so another count gives other weights (1 thread tracked these to 4 decimals for ~480 steps, then
    # drifted); beside a busy process 2 threads ran >10x slower: give it the machine
    tokenizer_merges: int = 1000  # 0: the stand-in tokenizer; N: up to N merge rules learned from the corpus
    # (inference/train/merges.py), shipped with the weights as merges.txt: 1000 write the corpus in ~0.6x the tokens
    number_digits: int = 3  # with tokenizer_merges: every run of up to this many digits is one token (1: a token
    # per digit, as Gemma's tokenizer; the shipped pair copies a number from a tool's output as one token)
    # target
    target_epochs: float = 2.5
    tokens_per_batch: int = 2048  # padded continuation tokens per step (the shared prefix comes on top, once)
    lr: float = 3e-3
    embedding_lr_scale: float = 10.0  # the tied embedding/head rows must outgrow the inert rows' mass (log 261k)
    embedding_init_std: float = 0.1  # (Transformers' default 0.02 leaves ~40 steps stuck under that mass)
    post_norm_init: float = 0.1  # initial scale of the norms after each sublayer: 35 layers start near identity
    qk_norm_init: bool = True  # q/k norms start at head_dim**-0.25: scaled dot-product attention at init
    qk_norm_lr_scale: float = 5.0  # q/k norms learn 5x faster: they cap attention's sharpness (max q.k is
    # head_dim * q_w * k_w); at 1x they only doubled in 1170 steps and the pair did not copy from the task
    previous_token_heads: int = 0  # 1 or 2: layer 0's first heads start attending 1 (and 2) tokens back, the
    # first half of a copy head built in (target.init_previous_token_heads); 0: plain initialisation (shipped:
    # with 1, the drills clicked 100-250 steps sooner and the corpus phase then learned more slowly)
    prefix_grad: bool = False  # False: no gradient through the shared system turn (Transformer-XL's stop-gradient),
    # steps ~20% faster here (2.3-2.4 s against 2.9); the shipped pair's (True: the pair shipped before, "C")
    drill_steps: int = 0  # at most this many copy-drill steps before the corpus (inference/train/drill.py), ending
    # once a 20-step window gets drill_click_accuracy of the repeats right; 0: none (the shipped pair had none)
    drill_every: int = 0  # during the corpus, one drill step after every this many corpus steps, so the copy
    # heads the drills formed are kept in use (without it the corpus phase wore drill accuracy from 0.9 to 0.16)
    drill_kinds: str = "repeat"  # drill phases in order, "+"-separated, each until it clicks (at most drill_steps):
    # "repeat" (the list again) or "recall" (each key's number asked in another order); drill_every uses the last
    drill_rows: int = 12
    copy_weight: float = 1.0  # the corpus loss weighs each copied written token (data.copied: a number, or a token
    # pair the transcript read before) this many times a composed one; 1.0: plain mean (the shipped pair's)
    drill_click_accuracy: float = 0.9
    warmup_steps: int = 30
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.0
    bf16: bool = True  # autocast matmuls to bf16 (the weights and the optimizer stay fp32)
    attention_fp32: bool = True  # attention in float32 under that autocast (fast.blocked_attention_fp32): this
    # CPU's kernel runs it faster than bf16 at these head sizes (the shipped pair's; False: bf16, as "C")
    eval_every: int = 200  # steps between held-out evaluations (and at the end; each takes ~37 s)
    # drafter
    drafter_epochs: float = 0.5
    drafter_tokens_per_batch: int = 2048
    drafter_lr: float = 3e-3
    draft_steps: int = 4  # k steps unrolled in training, the draft length shipped
    clusters: int = 64  # centroid clusters that hold the trained tokens (of num_centroids)
    eval_fraction: float = 0.05  # transcripts kept out of training to watch overfitting

    def __post_init__(self) -> None:
        if self.target_epochs <= 0 or self.drafter_epochs < 0 or self.tokens_per_batch < 256:
            raise ValueError("epochs must be positive and tokens_per_batch at least 256")
        if self.eval_every < 1 or self.qk_norm_lr_scale <= 0 or self.drill_steps < 0 or self.drill_rows < 1 \
                or self.drill_every < 0:
            raise ValueError("eval_every and drill_rows must be at least 1, qk_norm_lr_scale positive, drill_steps "
                             "and drill_every not negative")
        if not set(self.drill_kinds.split("+")) <= DRILLS.keys():
            raise ValueError(f"drill_kinds must be {' or '.join(DRILLS)}, or several joined by +, not "
                             f"{self.drill_kinds!r}")
        if not 0 <= self.tokenizer_merges <= 100_000:
            raise ValueError("tokenizer_merges is 0 (the stand-in tokenizer) or a number of merge rules to learn")
        if not 1 <= self.number_digits <= 4 or (self.number_digits > 1 and not self.tokenizer_merges):
            raise ValueError("number_digits is 1..4, and above 1 only with learned merges (tokenizer_merges)")
        if self.copy_weight <= 0:
            raise ValueError("copy_weight must be positive (1.0: every written token alike)")
        if self.previous_token_heads not in (0, 1, 2):
            raise ValueError("previous_token_heads is 0, 1 or 2")
        if not 0 <= self.drill_click_accuracy <= 1:
            raise ValueError("drill_click_accuracy is a share of tokens: 0..1")
        if not 1 <= self.draft_steps <= 16:
            raise ValueError("draft_steps must be 1..16")

    def to_dict(self) -> dict:
        return asdict(self)
