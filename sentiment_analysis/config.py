"""Hyperparameters of the sentiment_analysis benchmark (Seq-CNN on IMDB): two presets.

    from config import PRESETS, amp_dtype_for
    cfg = PRESETS["reference"]   # the 2018 recipe, each value with its source
    cfg = PRESETS["tiny"]        # the 2-core CPU demo on make_tiny_dataset.py's corpus
    amp_dtype_for((7, 0))        # "float16": the autocast dtype for a compute capability

Sources: `train.py @ aa596ff4` is mlcommons/training sentiment_analysis/paddle/train.py at the
preliminary v0.5 release; `paddle imdb.py` is PaddlePaddle/Paddle python/paddle/dataset/imdb.py;
"spec §N" is ../../shared/specs/sentiment_analysis.md (kept outside this folder by the project).
This module imports only the standard library, so bench.py runs on a bare GPU machine.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    # --- model -------------------------------------------------------------------------------
    model: str = "conv"                   # train.py @ aa596ff4 default `-m conv` (Seq-CNN)
    emb_dim: int = 1024                   # convolution_net emb_dim=1024, train.py @ aa596ff4
    num_filters: int = 1024               # sequence_conv_pool num_filters=hid_dim=1024, ibid.
    conv_widths: tuple = (3, 4)           # filter_size=3 and filter_size=4 branches, ibid.
    num_classes: int = 2                  # class_dim=2, ibid.
    # stacked_lstm_net (`--model lstm`, not the benchmark model): emb_dim=256, hid_dim=1024
    # (Paddle's dynamic_lstm size = 4 x hidden, so hidden 256), stacked_num=3, train.py @ aa596ff4
    lstm_emb_dim: int = 256
    lstm_fc_dim: int = 1024
    lstm_layers: int = 3

    # --- data --------------------------------------------------------------------------------
    vocab_cutoff: int = 150               # words seen > 150 times in train+test, paddle imdb.py
    expected_vocab_size: int | None = 5147  # incl. <unk>; dict_dim=5147 in Paddle's IMDB tests
    train_chunk_tokens: int = 16384       # ours: a 128-review batch runs as length-sorted chunks of
                                          # <= this many padded tokens (same gradient, less padding)
    eval_chunk_tokens: int = 65536        # ours: eval batches of <= this many padded tokens

    # --- optimisation ------------------------------------------------------------------------
    batch_size: int = 128                 # BATCH_SIZE=128, train.py @ aa596ff4 (global batch)
    lr: float = 5e-4                      # AdamOptimizer(learning_rate=0.0005), train.py @ aa596ff4
    adam_beta1: float = 0.9               # Paddle Fluid Adam defaults (spec §3)
    adam_beta2: float = 0.999
    adam_eps: float = 1e-8
    # The embedding's Adam. "lazy": as 2018 Paddle ran `embedding(is_sparse=True)` with Adam
    # (adam_op's SelectedRows path, PaddlePaddle PR #7045 until PR #13456 of September 2018):
    # rows absent from a batch keep their weights and moments (optim.LazyAdam). "dense":
    # torch.optim.Adam on every row (absent rows' moments decay and the rows move).
    embedding_adam: str = "lazy"
    max_epochs: int = 100                 # PASS_NUM=100, train.py @ aa596ff4

    # --- quality target ----------------------------------------------------------------------
    target: float = 0.906                 # "> 90.6 %" test accuracy, README / train.py @ aa596ff4;
                                          # we stop on >= (train.reached_target), see README
    eval_every: int = 1                   # evaluated after every pass, train.py @ aa596ff4

    # --- machine -----------------------------------------------------------------------------
    cpu_threads: int | None = None        # ours: intra-op threads on CPU unless OMP_NUM_THREADS is
                                          # set; None keeps torch's default


def amp_dtype_for(capability: tuple[int, int] | None) -> str:
    """The autocast dtype (a torch attribute name) for a CUDA device of this compute capability,
    or for the CPU (None): bf16 from Ampere (8.0) on, fp16 with a GradScaler below (P100 6.0,
    V100 7.0, T4 7.5), which have no bf16 units. Decided by the capability alone:
    torch.cuda.is_bf16_supported() also says True on a P100, where bf16 is emulated."""
    return "bfloat16" if capability is None or tuple(capability) >= (8, 0) else "float16"


PRESETS = {
    "reference": Config(),
    # Spec §8: emb 64, 64 filters (widths 3 and 4 unchanged), Adam lr 2e-3, batch 32, at most
    # 6 epochs, target 0.85 on the 2,500 synthetic test reviews. The tiny corpus has its own
    # vocabulary size (about 230), so nothing is asserted about it.
    "tiny": Config(
        emb_dim=64, num_filters=64, lstm_emb_dim=32, lstm_fc_dim=64,
        expected_vocab_size=None, train_chunk_tokens=512, eval_chunk_tokens=8192,
        batch_size=32, lr=2e-3, max_epochs=6, target=0.85,
        # The tiny model is too small to gain from a second thread, and on a busy 2-core box two
        # OpenMP threads per process made epochs ~10x slower (measured: 46 s vs 3.5 s per run).
        cpu_threads=1),
}
