"""Evaluation on minival during training: inference on the accelerator, COCO scoring in a worker process.

What stays on the training clock is only what needs the weights and the accelerator (spec section 3: the
whole evaluation is timed; NVIDIA's v0.6/v0.7 submissions overlapped the scoring with training too):
  predict          every rank infers its shard of minival (eval_shard: each image exactly once, no padding
                   repeats), several images per forward, grouped by orientation (less padding). The model
                   pastes each image's masks in one batched operation (model.paste_masks), and
                   model.to_detections thresholds them and keeps only the positions where each mask changes
                   value in COCO's column-major order: an image's masks reach the host as a few kilobytes of
                   int32 instead of H x W bytes each, copied once per batch.
  gather_to_rank0  rank 0 alone receives every rank's detections (torch.distributed.gather_object).
  CocoEvaluator    rank 0 hands them to a worker process that turns them into COCO results (RLE masks, xywh
                   boxes, COCO category ids: metrics.coco_results) and scores them (metrics.coco_evaluate),
                   while the next epoch trains.
  Evaluation       all of it for one run, and the one broadcast per poll that tells every rank the outcome.

Per image a detection is a dict of host arrays: image_id, height, width, boxes float32 [N, 4] (x1, y1, x2,
y2 in the original image's pixels), scores float32 [N], labels int64 [N] (contiguous 1..K), and for the
masks mask_changes int32 [C] (flat column-major indices at which a mask's thresholded pixels change value,
every mask's in turn) with mask_change_counts int64 [N] (how many belong to each mask).
"""

import contextlib
import multiprocessing

import torch
import torch.distributed as dist

import data
import metrics
import model as model_lib


class EvalError(RuntimeError):
    """The COCO evaluation of an epoch failed (in the worker process, or on rank 0 seen from another rank)."""


def eval_shard(n: int, rank: int, world_size: int) -> list[int]:
    """The evaluation images of one rank: every image exactly once over all ranks (no padding repeats)."""
    return list(range(rank, n, world_size))


@torch.no_grad()
def predict(model, dataset, indices: list[int], batch_size: int, device, autocast,
            workers: int = 0) -> list[dict]:
    """Detections (module docstring) of dataset[indices], batch_size images per forward, the indices ordered
    by orientation (width >= height or not) so that a batch pads little; `workers` loader processes read and
    decode the next images meanwhile. autocast: None (fp32) or the dtype of the training's autocast."""
    model.eval()
    groups = dataset.aspect_groups()
    indices = sorted(indices, key=lambda i: groups[i])  # stable: by id within an orientation
    loader = torch.utils.data.DataLoader(torch.utils.data.Subset(dataset, indices), batch_size=batch_size,
                                         collate_fn=data.collate, num_workers=workers,
                                         pin_memory=device.type == "cuda")
    detections = []
    for images, targets in loader:
        with torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            outputs = model([im.to(device, non_blocking=True) for im in images])
        detections += model_lib.to_detections([t["image_id"] for t in targets], outputs)
    model.train()
    return detections


def gather_to_rank0(detections: list[dict], rank: int, world_size: int) -> list[dict] | None:
    """Every rank's detections on rank 0 (None elsewhere): only rank 0 scores them."""
    if world_size == 1:
        return detections
    parts = [None] * world_size if rank == 0 else None
    dist.gather_object(detections, parts, dst=0)
    return [d for part in parts for d in part] if rank == 0 else None


class CocoEvaluator:
    """Rank 0's scoring of one epoch's gathered detections at a time.

    Asynchronous: a worker process (metrics.serve_evaluations) started once per run with "spawn" (a forked
    copy of a trainer that holds CUDA state and threads is not safe); it reads the ground-truth json once,
    turns each detection list it is sent into COCO results and scores them while the next epoch trains. One
    duplex pipe carries (epoch, detections) there and (status, epoch, accuracy or traceback) back; a worker
    that dies or raises makes take() raise EvalError instead of waiting. close() ends the worker (also on
    errors: train() calls it in a finally); a trainer killed outright closes the pipe, which ends the worker
    too (once the trainer's DataLoader workers, which hold copies of it, have followed their parent).
    Synchronous (--no-async-eval): submit() scores in this process. `pending` keeps the (epoch, detections)
    submitted and not yet taken. coco_ids: the COCO category id of each contiguous label 1..K.
    """

    def __init__(self, ground_truth_path: str, image_ids: list[int], coco_ids: list[int], asynchronous: bool):
        self.ground_truth_path, self.image_ids = ground_truth_path, list(image_ids)
        self.coco_ids = list(coco_ids)
        self.pending: tuple[int, list[dict]] | None = None
        self._accuracy = self._ground_truth = None  # synchronous: the pending epoch's score, the truth
        self._process = self._conn = None
        if asynchronous:
            ctx = multiprocessing.get_context("spawn")
            self._conn, child_conn = ctx.Pipe()
            self._process = ctx.Process(
                target=metrics.serve_evaluations, name="coco-eval", daemon=True,
                args=(child_conn, self.ground_truth_path, self.image_ids, self.coco_ids))
            self._process.start()
            child_conn.close()  # only the worker holds its end: its exit reads as EOF here

    def submit(self, epoch: int, detections: list[dict]) -> None:
        assert self.pending is None, "one evaluation at a time: take() the previous one first"
        self.pending = (epoch, detections)
        if self._process is None:
            if self._ground_truth is None:
                self._ground_truth = metrics.load_ground_truth(self.ground_truth_path)
            results = metrics.coco_results(detections, self.coco_ids)
            self._accuracy = metrics.coco_evaluate(self._ground_truth, results, self.image_ids)
            return
        try:
            self._conn.send((epoch, detections))  # the worker is idle (it returned the previous one): no wait
        except OSError:
            pass  # the worker is gone; take() reports why

    def take(self, wait: bool) -> tuple[int, dict] | None:
        """(epoch, {"BBOX": AP, "SEGM": AP}) of the pending evaluation once it is done (wait: block until
        then), else None."""
        if self.pending is None:
            return None
        epoch = self.pending[0]
        if self._process is None:
            accuracy = self._accuracy
        else:
            while not self._conn.poll(1.0 if wait else 0):  # a message, or EOF once the worker is gone
                if not self._process.is_alive() and not self._conn.poll(0):
                    raise self._died(epoch)
                if not wait:
                    return None
            try:
                status, _, accuracy = self._conn.recv()
            except EOFError:
                raise self._died(epoch) from None
            if status == "error":
                raise EvalError(f"the COCO evaluation of epoch {epoch} failed in the worker process:\n"
                                f"{accuracy}")
        self.pending = None
        return epoch, accuracy

    def _died(self, epoch: int) -> EvalError:
        self._process.join(5)
        return EvalError(f"the COCO evaluation worker (pid {self._process.pid}) exited with status "
                         f"{self._process.exitcode} before scoring epoch {epoch}")

    def close(self) -> None:
        """End the worker: an idle one is asked to exit; one still scoring (nobody reads it) is terminated."""
        if self._process is None:
            return
        if self.pending is None:
            with contextlib.suppress(OSError):
                self._conn.send(None)  # not only EOF: forked DataLoader workers may hold copies of our end
            self._process.join(10)
        self._conn.close()
        if self._process.is_alive():
            self._process.terminate()
        self._process.join()
        self._process.close()
        self._process = None


class Evaluation:
    """One run's evaluations on every rank: submit() infers this rank's shard of the evaluation set with the
    current weights and hands the gathered detections to rank 0's CocoEvaluator; poll() is where all ranks
    learn, at the same points of training, whether a score has arrived and met the targets."""

    def __init__(self, eval_set, ground_truth_path: str, batch_size: int, device: torch.device, autocast,
                 rank: int, world_size: int, asynchronous: bool):
        self.eval_set, self.batch_size, self.device, self.autocast = eval_set, batch_size, device, autocast
        self.rank, self.world_size = rank, world_size
        self.shard = eval_shard(len(eval_set), rank, world_size)
        self.scorer = None if rank else CocoEvaluator(
            ground_truth_path, [r["image_id"] for r in eval_set.records], eval_set.category_map.coco_ids,
            asynchronous)

    def submit(self, model, epoch: int) -> None:
        detections = gather_to_rank0(predict(model, self.eval_set, self.shard, self.batch_size, self.device,
                                             self.autocast, workers=0 if self.device.type == "cpu" else 4),
                                     self.rank, self.world_size)
        if self.scorer is not None:
            self.scorer.submit(epoch, detections)

    def poll(self, wait: bool, on_score) -> bool:
        """Rank 0 takes the pending score if it is done (wait: once it is) and on_score(epoch, accuracy) says
        whether it meets the targets; one 4-byte broadcast then tells every rank: stop at this same iteration,
        go on, or the evaluation failed (EvalError on every rank). -> whether to stop."""
        code, error = 0, None
        if self.scorer is not None:
            try:
                done = self.scorer.take(wait)
            except EvalError as e:
                code, error = 2, e
            else:
                code = int(done is not None and bool(on_score(*done)))
        if dist.is_initialized():
            flag = torch.tensor([code], dtype=torch.int32, device=self.device)
            dist.broadcast(flag, src=0)
            code = int(flag.item())
        if code == 2:
            raise error or EvalError("rank 0's COCO evaluation failed (its error says why)")
        return code == 1

    def close(self) -> None:
        if self.scorer is not None:
            self.scorer.close()
