"""Bulk pre-annotation: predict thousands of tasks outside Label Studio's 100-second ``/predict`` window.

Three ways in, one chunked loop on the prediction layer's model pool and :func:`~labelzoo.prediction.run_backend`:

* ``labelzoo predict <backend> --tasks tasks.json|folder --out predictions.json``: offline, into Label
  Studio's import format (:mod:`~labelzoo.bulk.offline`, resumable through a ``.partial`` journal);
* ``labelzoo predict <backend> --project N`` and ``POST /bulk {"project": N}``: a *bulk job* that
  predicts the project's tasks lacking a prediction of the current version and posts them through the
  API (:mod:`~labelzoo.bulk.service`), in a thread, in the foreground, or spread over RQ workers
  (:mod:`~labelzoo.bulk.rq`);
* a batch ``/predict`` that reaches ``PREDICT_DEADLINE`` answers with what is done and hands the rest
  to a bulk job (:mod:`~labelzoo.prediction.deadline`, through :class:`~labelzoo.bulk.service.Handoff`).

Modules: :mod:`~labelzoo.bulk.lsapi` (Label Studio calls: rate limit, retries, no duplicate posts),
:mod:`~labelzoo.bulk.chunks` (one chunk: read, predict, post), :mod:`~labelzoo.bulk.store` (jobs, chunks and
task claims in the store's ``bulk_*`` tables), :mod:`~labelzoo.bulk.sources` and :mod:`~labelzoo.bulk.journal`
(offline input and output), :mod:`~labelzoo.bulk.progress` (the progress bar), :mod:`labelzoo.predict_command`
(``labelzoo predict``). See ``docs/bulk.md``.
"""
