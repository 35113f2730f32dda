"""Hyperparameters of the Transformer (big) benchmark: `reference`, `reference_8gpu` and `tiny` presets.

    from config import PRESETS; cfg = PRESETS["reference"]

Reference values come from the MLPerf Training v0.5 reference (mlcommons/training translation/tensorflow/
transformer @ v0.5); each field names its source (files relative to that folder). `reference_8gpu` is the
same model under the large-batch recipe of NVIDIA's MLPerf v0.6 DGX-1 submission (8 V100s), see
RECIPE_8GPU. The tiny preset keeps the code path and shrinks the widths, depth and data (spec section 8)
so it trains on 2 CPU cores in well under a minute. Imports only the standard library (bench.py runs on a
bare GPU machine).
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Config:
    # --- vocabulary and data ---
    vocab_size: int = 32768  # one en+de sentencepiece model; v0.5 subtokenizer target 32,768 (tokenizer.py)
    spm_input_sentences: int = 2_000_000  # sentences sampled to train sentencepiece (untimed preprocessing)
    num_shards: int = 100  # train shards written by preprocessing (process_data.py: 100)
    max_length: int = 256  # drop pairs with a longer side, EOS included (utils/dataset.py _filter_max_length)
    max_tokens: int = 4096  # padded tokens per side, batch and rank ("batch_size" 4096, model_params.py)
    # ours: the number of GPUs a multi-GPU recipe was published for; fewer ranks accumulate gradients over
    # recipe_gpus / ranks batches per update (fairseq's --update-freq) so that the global batch stays
    # recipe_gpus x max_tokens. None: every rank takes max_tokens and steps (global batch grows with ranks).
    recipe_gpus: int | None = None
    # --- model: Transformer big (model/model_params.py BIG_PARAMS) ---
    d_model: int = 1024  # hidden_size
    num_heads: int = 16  # num_heads
    ffn_dim: int = 4096  # filter_size
    encoder_layers: int = 6  # num_hidden_layers
    decoder_layers: int = 6  # num_hidden_layers
    dropout: float = 0.1  # layer_postprocess_dropout (residual + embedding)
    attention_dropout: float = 0.1  # attention_dropout
    relu_dropout: float = 0.1  # relu_dropout
    # --- loss and optimizer (transformer_main.py, model_params.py) ---
    label_smoothing: float = 0.1  # label_smoothing
    learning_rate: float = 2.0  # learning_rate: factor of d_model^-0.5 * min(1, s/w) * max(s, w)^-0.5
    warmup_steps: int = 16000  # learning_rate_warmup_steps
    adam_beta1: float = 0.9  # optimizer_adam_beta1
    adam_beta2: float = 0.997  # optimizer_adam_beta2
    adam_epsilon: float = 1e-9  # optimizer_adam_epsilon
    # --- evaluation: beam search on newstest2014 (model_params.py, transformer_main.py) ---
    beam_size: int = 4  # beam_size
    length_penalty_alpha: float = 0.6  # alpha
    extra_decode_length: int = 50  # extra_decode_length (pitfall 9: 50, not translate.py's 100)
    decode_batch_size: int = 32  # translate.py: batches of 32 sentences sorted by length
    target_bleu: float = 25.0  # uncased BLEU on newstest2014, stop when reached (run_and_time.sh: 25)
    max_epochs: int = 20  # safety cap: v0.5 lifts the 10-epoch default with --bleu_threshold; ~3 needed
    eval_every_epochs: int = 1  # evaluate after every epoch (transformer_main.py, train_eval loop)
    cpu_threads: int | None = None  # ours: CPU intra-op threads unless OMP_NUM_THREADS is set; None: torch's


# The large-batch recipe of NVIDIA's MLPerf Training v0.6 transformer submission on one DGX-1 (8 V100s,
# 20.3 min; mlcommons/training_results_v0.6 NVIDIA/benchmarks/transformer/implementations/pytorch
# config_DGX1.sh and run_training.sh @ e045ad7): fairseq's --max-tokens 10240 per GPU (global batch
# 81,920 tokens, 20x the reference's 4,096), --warmup-updates 1000 from 0 then inverse square root with
# --lr 1.976e-3 (= 2.0 * 1024^-0.5 * 1000^-0.5: the reference's formula with warm-up 1000, so
# learning_rate stays 2.0), --adam-betas (0.9, 0.98), eps 1e-9, and --max-source/target-positions 64 with
# longer pairs discarded (ignore_invalid_inputs=True in its train.py). Everything else (model, dropout,
# label smoothing 0.1, beam 4, alpha 0.6, max length +50) is the reference's.
RECIPE_8GPU = dict(recipe_gpus=8, max_tokens=10240, warmup_steps=1000, adam_beta2=0.98, max_length=64)

# The fields preprocess.py reads: presets that agree on them share DATA_DIR/preprocessed.
PREPROCESSING_FIELDS = ("vocab_size", "spm_input_sentences", "num_shards")


def preprocessing(cfg: Config) -> dict:
    return {name: getattr(cfg, name) for name in PREPROCESSING_FIELDS}


PRESETS = {
    "reference": Config(),
    "reference_8gpu": dataclasses.replace(Config(), **RECIPE_8GPU),
    # Spec section 8 tiny config, calibrated with sacrebleu: a correct run reaches the target in about
    # 2 epochs, source/target-misaligned data stays far below it.
    "tiny": Config(
        vocab_size=640,
        spm_input_sentences=40_000,
        num_shards=4,
        max_tokens=2048,
        d_model=64,
        num_heads=4,
        ffn_dim=256,
        encoder_layers=2,
        decoder_layers=2,
        warmup_steps=200,
        target_bleu=50.0,
        max_epochs=6,
        # A model this small gains nothing from a second thread, and on a busy 2-core box two OpenMP
        # threads per process made steps ~20x slower (3.5 s against 0.16 s).
        cpu_threads=1,
    ),
}
