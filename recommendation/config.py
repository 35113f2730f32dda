"""Hyperparameters of NeuMF on MovieLens ml-20m: the MLPerf Training v0.5 reference preset, NVIDIA's v0.5
large-batch recipe, and a tiny version of each.

Sources are named per field; "c097c799" means mlcommons/training recommendation/pytorch @ c097c799, the last
commit before the post-round rewrite (the git tag v0.5 is NOT the benchmark that was run; see the spec).
"NVIDIA v0.5" means mlcommons/training_results_v0.5 v0.5.0/nvidia/submission/code/recommendation/pytorch
@ c71f2e7 (run_and_time.sh, README.md), the 24.0 s DGX-2H result. The tiny presets run the same code on the
synthetic data of make_tiny_dataset.py in well under a minute on CPU.

This module imports only the standard library: bench.py and model.py may import it on a bare GPU machine.
"""

import dataclasses

# ml-20m after preprocessing (>= 20 ratings per user removes nobody): spec section 1/2. bench.py uses these.
ML20M_USERS = 138_493
ML20M_ITEMS = 26_744


@dataclasses.dataclass(frozen=True)
class Config:
    # Model: NeuMF, `-f 64 --layers 256 256 128 64` (run_and_time.sh @ c097c799).
    mf_dim: int = 64
    mlp_layer_sizes: tuple[int, ...] = (256, 256, 128, 64)  # [0] is user+item MLP embedding width (128 + 128)
    # Optimizer: torch.optim.Adam, constant lr, no weight decay (ncf.py @ c097c799).
    learning_rate: float = 0.0005
    adam_beta1: float = 0.9
    adam_beta2: float = 0.999
    adam_epsilon: float = 1e-8
    # Lazy Adam for the embeddings: only the rows in the batch move and only their moments decay (the v0.5
    # rules allowed it for NCF; TF's LazyAdamOptimizer, torch.optim.SparseAdam). The reference used dense
    # Adam, so off by default; train.py --lazy-adam turns it on for any preset.
    lazy_adam: bool = False
    global_batch_size: int = 2048  # run_and_time.sh @ c097c799 (-b 2048); split evenly over ranks
    # Data: 4 training negatives per positive, redrawn every epoch (dataset.py @ c097c799);
    # 999 evaluation negatives per user (convert.py @ c097c799, -n 999), drawn with np.random.seed(0).
    num_train_negatives: int = 4
    num_eval_negatives: int = 999
    eval_negatives_seed: int | None = 0  # 0: the reference's fixed seed; None: the run seed (NVIDIA v0.5)
    min_ratings: int = 20  # convert.py @ c097c799 MIN_RATINGS
    # Evaluation and stopping: HR@10 after every epoch, stop at 0.635 (training_rules.adoc @ ae9f1e0), 20
    # epochs max (ncf.py -e default). The reference also evaluates once before training (not counted as an
    # epoch).
    topk: int = 10
    quality_target: float = 0.635
    max_epochs: int = 20
    eval_batch_size: int = 1 << 20  # (user, item) pairs per scoring forward pass; memory only, not semantics
    log_every: int = 2000  # steps between progress lines on stderr
    cpu_threads: int | None = None  # intra-op threads on CPU unless OMP_NUM_THREADS is set; None: torch's
    tiny_data: bool = False  # made for make_tiny_dataset.py data; the others refuse a DATA_DIR with tiny.md5


# NVIDIA's v0.5 recipe (run_and_time.sh and README.md of NVIDIA v0.5): 512x the reference batch, 95 steps an
# epoch, with Adam retuned for it (the v0.5 rules let NCF submitters choose lr, beta1 and beta2). Everything
# else is the reference's: model, 4 training negatives per positive redrawn every epoch, 999 evaluation
# negatives with the reference's draw and ranking rules, target 0.635, at most 20 epochs.
LARGE_BATCH = {"global_batch_size": 1_048_576, "learning_rate": 0.0045, "adam_beta1": 0.25,
               "adam_beta2": 0.5, "adam_epsilon": 1e-8}


PRESETS = {
    "reference": Config(),
    "large_batch": Config(**LARGE_BATCH),
    # Spec section 8 (calibrated on make_tiny_dataset.py data: 1,000 users, 2,000 items): untrained HR@10
    # ~0.1, item popularity ~0.23, a correct model 0.45-0.48 after 3 epochs; shuffled labels ~0.1, misaligned
    # <= 0.23. 100 eval negatives keep the duplicate rate (~2.5%) close to the full run's (~1.9%).
    "tiny": Config(
        mf_dim=8,
        mlp_layer_sizes=(64, 32, 16, 8),
        learning_rate=0.005,
        global_batch_size=1024,
        num_eval_negatives=100,
        quality_target=0.45,
        max_epochs=10,
        log_every=100,
        # Too small to gain from intra-op threads, and on a busy 2-core machine OpenMP threads spin against
        # other processes: measured 2 ms/step with 1 thread against 50-70 ms/step with 2 on a loaded box.
        cpu_threads=1,
        tiny_data=True,
    ),
}
# The large-batch recipe on the tiny data: NVIDIA's Adam (lr, betas, epsilon) with the batch scaled down.
# 1,048,576 would be five tiny epochs in one step. Keeping the real run's 95 steps an epoch (2,048 here) is
# too noisy for beta2 = 0.5: a tiny batch looks up each item row once or twice a step, ml-20m's 39 times.
# Measured (3 seeds, HR@10 over 20 epochs; README): 2048 reached 0.45 at epoch 8 and 10 (one seed never),
# 4096 at epoch 7-10, 8192 at 10-12, 16384 at 17-19. Hence 4096 (48 steps an epoch), and the reference's 20
# epochs at most, as NVIDIA's runs had.
PRESETS["tiny_large_batch"] = dataclasses.replace(
    PRESETS["tiny"], **{**LARGE_BATCH, "global_batch_size": 4096, "max_epochs": 20})
