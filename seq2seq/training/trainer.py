"""The translation training loop: teacher forcing, validation, checkpoints and exact resume.

One *step* is one optimizer update over `trainer.accumulate` batches (the last
update of an epoch may have fewer). The loss of an update is summed over all its
target tokens and divided by their total, so accumulating batches X and Y gives
the gradient of one update over X ∪ Y. The learning rate warms up linearly over
`trainer.warmup_steps` updates; reduce-on-plateau acts only after the warm-up.
With `trainer.scheduled_sampling`, updates whose teacher-forcing probability is
below 1 run the decoder token by token (seq2seq.scheduled_sampling); the coin
flips come from a generator seeded with (seed, step), so a resume stays exact.
"""

from __future__ import annotations

import logging
import resource
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from seq2seq.checkpoint import save_checkpoint
from seq2seq.data.batching import Batch
from seq2seq.hardware import flatten_rnn_weights, grad_scaler, resolve_precision
from seq2seq.nn.model import ModelSpec, Seq2Seq, spec_from_options
from seq2seq.tokenizers.files import save_tokenizers
from seq2seq.training.averaging import average_checkpoints
from seq2seq.training.checkpointing import check_same_model, load_resume
from seq2seq.training.corpus import (
    TrainingCorpus,
    load_data,
    tokenizer_states,
    write_data_report,
)
from seq2seq.training.distributed import wrap_for_training
from seq2seq.training.evaluation import DevEvaluation, dev_evaluation
from seq2seq.training.optimizer import load_optimizer_state, make_adam
from seq2seq.training.progress import LogInterval, RunProgress
from seq2seq.training.reproducibility import seed_everything
from seq2seq.training.run import TrainingRun
from seq2seq.training.schedule import LRSchedule
from seq2seq.training.scheduled_sampling import (
    TrainingForward,
    teacher_forcing_probability,
    validate_schedule,
)
from seq2seq.training.update import UpdateStep

log = logging.getLogger(__name__)


@dataclass
class Progress(RunProgress):
    """Where translation training stands; saved in every checkpoint."""

    batch_in_epoch: int = 0  # batches of `epoch` already consumed


def model_spec_from_config(model_cfg: Any, src_vocab: int, tgt_vocab: int) -> ModelSpec:
    options = (
        OmegaConf.to_container(model_cfg, resolve=True)
        if isinstance(model_cfg, DictConfig)
        else dict(model_cfg)
    )
    return spec_from_options(options, src_vocab, tgt_vocab)


class Trainer(TrainingRun):
    """Trains a translation model (`task: translation`)."""

    progress_type = Progress
    progress: Progress
    dev_output: DevEvaluation | None = None  # of the latest evaluate(), until reported

    def train(self) -> dict[str, Any]:
        """For each update: batches → forward/backward → step → log → maybe evaluate →
        maybe checkpoint → maybe stop; at the end last.pt, a final evaluation and
        trainer.average_last. summary.json records how it ended, errors included."""
        with self.summary_on_exit():
            self.setup()
            p = self.progress
            self.updates_per_epoch = self.corpus.describe(p.epoch, self.accumulate)
            self.start(self.updates_per_epoch, "train")
            while self.stop_reason is None and p.epoch < self.tcfg.max_epochs:
                fresh, attempts = p.batch_in_epoch == 0, p.updates + p.skipped_steps
                for batches in self.corpus.updates(self.epoch_source(p.epoch), self.accumulate):
                    loss, tokens = self._train_step(batches)
                    p.batch_in_epoch += len(batches)
                    self.count_update(loss, tokens, self.updater.clipped)
                    self.maybe_log()
                    self.maybe_evaluate()
                    self.maybe_checkpoint()
                    if self.stop_reason is not None:
                        break
                if self.stop_reason is None:
                    empty = fresh and p.updates + p.skipped_steps == attempts
                    self.corpus.end_epoch(p.epoch, empty)
                    p.epoch, p.batch_in_epoch = p.epoch + 1, 0
            self.finish()
        return {
            "step": p.step,
            "epoch": p.epoch,
            "best_score": p.best_score,
            "stop_reason": self.stop_reason,
        }

    # ----------------------------------------------------------------- setup
    def setup(self) -> None:
        t = self.tcfg
        self._check_recipe()
        seed_everything(t.seed)
        if t.threads:
            torch.set_num_threads(t.threads)
        resumed = load_resume(t.resume, ("optimizer",), "it holds weights only (use last.pt)")
        self.data = load_data(self.cfg, self.dist, resumed["tokenizers"] if resumed else None)
        if self.dist.is_main:
            src, tgt = self.data.src_tokenizer, self.data.tgt_tokenizer
            save_tokenizers(self.run_dir / "tokenizer", self.cfg.tokenizer.type, src, tgt)
            write_data_report(self.run_dir, self.data.report)
        src, tgt = self.data.src_tokenizer, self.data.tgt_tokenizer
        self.spec = model_spec_from_config(self.cfg.model, src.vocab_size, tgt.vocab_size)
        if self.spec.tie_embeddings == "all" and src is not tgt:
            raise ValueError(
                "model.tie_embeddings=all shares one embedding between source and target, so it "
                "needs one joint vocabulary: set tokenizer.joint=true (or tie_embeddings=decoder)"
            )
        self.model = Seq2Seq(self.spec).to(self.device)
        self.optimizer = make_adam(self.model.parameters(), t.lr, fused=t.fused_optimizer)
        plateau = {"factor": t.lr_decay, "patience": t.lr_patience, "min_lr": t.min_lr}
        mode = "max" if t.early_stopping_metric == "bleu" else "min"
        self.schedule = LRSchedule(
            self.optimizer, t.lr, self.warmup_steps, t.anneal, {"mode": mode, **plateau}
        )
        scaler = grad_scaler(self.device, self.precision)
        if resumed:
            self._restore(resumed, scaler)
        else:
            self.dist.seed_own_dropout(t.seed)
        forward = wrap_for_training(TrainingForward(self.model), self.dist, self.device)
        self.updater = UpdateStep(
            self.model,
            forward,
            self.optimizer,
            scaler,
            self.schedule,
            self.dist,
            t,
            self.device,
            self.precision,
        )
        flatten_rnn_weights(self.model)
        self.corpus = TrainingCorpus(self.data, self.cfg, self.dist)
        log.info(
            "model: %s, %d parameters; %s training pairs; vocab %d/%d",
            self.spec.cell,
            self.model.num_parameters(),
            "streamed" if self.corpus.streamed else len(self.data.train),
            self.spec.src_vocab_size,
            self.spec.tgt_vocab_size,
        )

    def _check_recipe(self) -> None:
        """What the schema cannot check alone: a schedule's k against its kind, and a
        precision against this machine (`auto` chosen for it)."""
        t = self.tcfg
        self.accumulate, self.warmup_steps = t.accumulate, t.warmup_steps
        validate_schedule(t.scheduled_sampling)
        self.precision = resolve_precision(self.device, t.precision, "trainer.precision")

    def _restore(self, payload: dict[str, Any], scaler: torch.amp.GradScaler) -> None:
        # How the cells run (fused, compiled) does not change the weights.
        ignored = {"fused", "compile_cell"}
        saved = {k: v for k, v in payload["model_spec"].items() if k not in ignored}
        check_same_model(saved, {k: v for k, v in self.spec.to_dict().items() if k not in ignored})
        self.model.load_state_dict(payload["model"])
        load_optimizer_state(self.optimizer, payload["optimizer"])
        self.schedule.load_state_dict(payload["scheduler"])
        if payload.get("scaler"):
            scaler.load_state_dict(payload["scaler"])
        self.progress = Progress(**payload["progress"])
        rngs = payload.get("rng_ranks") or [payload["rng"]]
        self.dist.restore_rng(rngs, self.tcfg.seed, self.progress.step)

    def _payload(self, full: bool) -> dict[str, Any]:
        payload = {
            "model_spec": self.spec.to_dict(),
            "model": self.model.state_dict(),
            "tokenizers": tokenizer_states(self.data, self.cfg.tokenizer.type),
            "config": OmegaConf.to_container(self.cfg, resolve=True),
            "progress": self.progress_state(),
            **self.corpus.length_summary(),
            **self.corpus.shortlist_summary(),
        }
        if full:
            rngs = self.dist.gather_rng_states()
            payload.update(
                optimizer=self.optimizer.state_dict(),
                scheduler=self.schedule.state_dict(),
                scaler=self.updater.scaler.state_dict(),
                rng=rngs[0],
                rng_ranks=rngs,
            )
        return payload

    # -------------------------------------------------------------- batches
    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """The training examples of each batch of `epoch`, in order."""
        return self.corpus.epoch_batches(epoch)

    def padding_fraction(self, epoch: int = 0) -> float:
        return self.corpus.padding_fraction(epoch)

    def epoch_source(self, epoch: int) -> Iterator[Batch]:
        """This process's batches of `epoch`, from progress.batch_in_epoch on."""
        return self.corpus.epoch_source(epoch, self.progress.batch_in_epoch)

    # --------------------------------------------------------------- update
    def _train_step(self, batches: list[Batch]) -> tuple[float | None, int]:
        """One update over `batches`: the loss per token (None: NaN/Inf, skipped) and the
        target tokens, both over all processes (see UpdateStep)."""
        loss, tokens, applied, clipped = self.updater(
            batches, self.progress.step, self._budget_used
        )
        self.progress.updates += applied
        self.progress.clip_events += clipped
        return loss, tokens

    def _budget_used(self) -> float:
        p = self.progress
        per_epoch = getattr(self, "updates_per_epoch", None) or 1
        return self.budget.used(p.epoch + p.batch_in_epoch / self.accumulate / per_epoch, p.step)

    # ------------------------------------------------------- what it reports
    def _interval_record(self, interval: LogInterval) -> dict[str, Any]:
        t, p = self.tcfg, self.progress
        record = {
            "step": p.step,
            "epoch": p.epoch,
            "train_loss": interval.loss / interval.updates,
            "lr": self.optimizer.param_groups[0]["lr"],
            "tgt_tokens_per_s": interval.per_second(),
            "grad_norm": self.updater.grad_norm,  # of the interval's last update
            "clip_norm": t.clip_norm,
            "clip_events": interval.clips,
            "clip_events_total": p.clip_events,
            "updates_total": p.updates,
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
        if self.corpus.streamed:  # pairs this process has read in this epoch
            record["stream_pairs_read"] = self.corpus.stream_stats.read
        if t.scheduled_sampling.schedule != "none":
            record["teacher_forcing"] = teacher_forcing_probability(
                t.scheduled_sampling, p.step - 1
            )
        return record

    def _postfix(self, record: dict[str, Any]) -> dict[str, str]:
        return {"loss": f"{record['train_loss']:.3f}", "tok/s": f"{record['tgt_tokens_per_s']:.0f}"}

    def _eval_metric(self) -> str:
        return "dev_bleu" if self.tcfg.early_stopping_metric == "bleu" else "dev_loss"

    def evaluate(self) -> dict[str, float]:
        self.dev_output = dev_evaluation(
            self.model, self.data, self.corpus.dev_tokens, self.tcfg, self.device
        )
        return self.dev_output.scores

    def _report_evaluation(self, step: int) -> None:
        """RUN/dev/step_N.hyp: every dev translation scored, one a line, in order; the
        first few also go to the dashboards beside the source and reference."""
        out, self.dev_output = self.dev_output, None
        if out is None:  # scores that did not come from evaluate() (as in tests)
            return
        path = self.run_dir / "dev" / f"step_{step}.hyp"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("".join(h.replace("\n", " ") + "\n" for h in out.hypotheses), "utf-8")
        self.loggers.translations(step, out.sources, out.references, out.hypotheses)

    def _announce_eval(self, metrics: dict[str, float], better: bool) -> None:
        log.info(
            "step %d: dev loss %.3f, ppl %.2f, BLEU %.2f%s",
            self.progress.step,
            metrics["dev_loss"],
            metrics["dev_ppl"],
            metrics["dev_bleu"],
            " (best)" if better else "",
        )

    def _after_training(self, interrupted: bool) -> None:
        if not interrupted:
            self._average_last()

    def _average_last(self) -> None:
        """trainer.average_last=N: checkpoints/averaged.pt, the mean of the final weights and
        the N-1 newest periodic checkpoints before them. It usually translates better than
        any single one of them; its dev scores are logged."""
        paths = self.checkpoints.to_average(self.progress.step)
        if not paths:
            return
        payload = average_checkpoints(paths)
        save_checkpoint(self.ckpt_dir / "averaged.pt", payload)
        self.model.load_state_dict(payload["model"])  # training is over: score the average
        metrics = self.evaluate()
        names = [p.name for p in paths]
        self.averaged = {"checkpoint": str(self.ckpt_dir / "averaged.pt"), "from": names, **metrics}
        self._log({"step": self.progress.step, "averaged": names, **metrics})
        log.info(
            "averaged %s into %s: dev loss %.3f, ppl %.2f, BLEU %.2f",
            ", ".join(names),
            self.ckpt_dir / "averaged.pt",
            metrics["dev_loss"],
            metrics["dev_ppl"],
            metrics["dev_bleu"],
        )
