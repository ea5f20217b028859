"""One level-triggered pass over a run: plan, react to finished Jobs, start waves, write status.

Every step reads the truth (the CR, its Jobs from the kopf index, our tables) and converges on
it, so a pass can be repeated, interrupted or run by a restarted operator without creating a
duplicate Job or applying a reaction twice (range transitions are guarded by state in SQL).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import psycopg2.extensions

from qd_operator import jobs, kube, metrics, model, planning, progress, ranges, reactions, spec, status, waves
from qd_operator.settings import OperatorSettings

#: post(reason, message, warning): an Event on the run.
PostEvent = Callable[[str, str, bool], None]
#: adopt(manifest): set the owner reference (kopf.adopt in production).
Adopt = Callable[[dict[str, Any]], None]

_PLAN = {planning.Outcome.PLANNED: status.Plan.PLANNED, planning.Outcome.EMPTY: status.Plan.EMPTY,
         planning.Outcome.OVERLAP: status.Plan.OVERLAP, planning.Outcome.BUSY: status.Plan.NOT_YET}


@dataclasses.dataclass
class Reconciler:
    settings: OperatorSettings
    conn: psycopg2.extensions.connection
    cluster: kube.Cluster
    post: PostEvent
    adopt: Adopt
    log: logging.Logger | logging.LoggerAdapter[Any]
    now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC)

    def run(self, body: Mapping[str, Any], child_jobs: Sequence[model.JobLike],
            last_status: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Reconcile once; return the new status (already patched when it changed).

        `child_jobs` are the run's Jobs as the kopf index keeps them (model.ChildJob), or Job bodies.
        `last_status` is what the previous pass wrote: the operator is the status's only writer, and
        the body's copy lags until the watch delivers the patch (comparing with it would repeat Events).
        """
        views = [model.as_child_job(j) for j in child_jobs]
        meta = body["metadata"]
        uid, ns, name = str(meta["uid"]), str(meta["namespace"]), str(meta["name"])
        old = dict(last_status if last_status is not None else body.get("status") or {})
        generation = int(meta.get("generation") or 0)
        try:
            run = spec.parse(body.get("spec") or {}, default_image=self.settings.default_image)
        except spec.SpecError as err:
            return self._write(ns, name, old, status.Facts(generation, False, status.Plan.INVALID, self.now(),
                                                           plan_message=str(err)))
        if self._settled(body, old):
            # Finished and no rerun asked: the status stays as it ended (a later run's claims rewrite
            # qd_gazette_state.run_id, so recounting would shrink it); a spec edit only moves
            # observedGeneration (the TTL is read from the current spec).
            if old.get("observedGeneration") != generation:
                self.cluster.patch_status(ns, name, {"observedGeneration": generation})
                old["observedGeneration"] = generation
            self._finish(uid, ns, name, run, old)
            metrics.observe_run(uid, ns, name, _phase(old), {})
            return old
        result = planning.plan(self.conn, uid=uid, namespace=ns, name=name, run=run)
        if result.outcome is planning.Outcome.OVERLAP:
            self._release_if_gone(result)
        plan = _PLAN[result.outcome]  # the Planned Event comes with the condition (status.transition_events)
        extra: dict[str, Any] = {}
        if result.outcome is planning.Outcome.PLANNED:
            extra = self._rerun(body, old, uid)
            self._react(uid, ns, run, views)
            self._suspend(ns, run, views)
            if not run.suspend:
                in_flight = ranges.wave_parallelism(self.conn, uid)  # Jobs holding running ranges
                self._recover(uid, name, ns, run, views, in_flight)
                self._launch(uid, name, ns, run, views, in_flight)
        facts = status.Facts(generation, run.suspend, plan, self.now(), plan_message=result.message,
                             progress=progress.load(self.conn, uid))
        new = self._write(ns, name, old, facts, extra)
        self._finish(uid, ns, name, run, new)
        metrics.observe_run(uid, ns, name, _phase(new), {s.value: {k.value: v for k, v in states.items()}
                                               for s, states in (facts.progress.gazettes.items()
                                                                 if facts.progress else [])})
        return new

    # -- steps ---------------------------------------------------------------------------------

    @staticmethod
    def _settled(body: Mapping[str, Any], old: Mapping[str, Any]) -> bool:
        """The run finished and no new rerun annotation asks for more."""
        if not old.get("completionTime"):
            return False
        wanted = (body["metadata"].get("annotations") or {}).get(model.ANNOTATION_RERUN)
        return not wanted or wanted == old.get("observedRerun")

    def _release_if_gone(self, result: planning.PlanResult) -> None:
        """A blocker whose CR is gone would block forever: mark it deleted; the next pass plans this run.

        That happens when its delete handler could not reach the database, or its finalizer was removed by hand.
        """
        if not result.blocking_uid or not result.blocking_run:
            return
        namespace, _, name = result.blocking_run.partition("/")
        if self.cluster.run_exists(namespace, name, result.blocking_uid) is False:
            planning.finish_run(self.conn, result.blocking_uid, model.RunState.DELETED)
            self.post("StaleRunReleased", f"run {result.blocking_run} no longer exists: it blocks no more", False)

    def _rerun(self, body: Mapping[str, Any], old: Mapping[str, Any], uid: str) -> dict[str, Any]:
        """The rerun-failed annotation: act once per new value, remember it in status."""
        wanted = (body["metadata"].get("annotations") or {}).get(model.ANNOTATION_RERUN)
        unchanged = {"observedRerun": old["observedRerun"]} if old.get("observedRerun") else {}
        if not wanted:
            return unchanged
        if wanted != old.get("observedRerun"):
            try:
                count = ranges.rerun_failed(self.conn, uid)
            except ranges.RerunBusyError:  # not observed yet: the next pass tries again
                return unchanged
            except ranges.RerunBlockedError as err:
                self.post("RerunBlocked", f"{err}; annotate again once it finished", True)
            else:
                self.post("RerunFailedRanges", f"{count} failed range(s) put back to pending", False)
        return {"observedRerun": wanted}

    def _react(self, uid: str, ns: str, run: spec.RunSpec, child_jobs: Sequence[model.ChildJob]) -> None:
        """Settle the ranges of every Job whose indexes finished (succeeded, failed, OOMKilled)."""
        for job in child_jobs:
            job_name = job.name
            rows = ranges.job_ranges(self.conn, uid, job_name)
            if not any(r.state is model.RangeState.RUNNING for r in rows):
                continue
            failed, _ = reactions.job_failed(job)
            has_failures = bool(job.failed_indexes) or failed
            pods = self.cluster.job_pods(ns, job_name) if has_failures else []
            stage = rows[0].stage
            tiers = [t.quantity for t in run.tiers(stage)]
            live = ranges.unfinished_counts(self.conn, uid, rows) if has_failures else None
            started = _parse_time(job.start_time)
            for decision in reactions.decide(job, rows, pods, tiers=tiers, max_split_depth=run.max_split_depth,
                                             pending=live):
                applied = ranges.apply(self.conn, uid, decision, tiers=len(tiers))
                if not applied.applied:
                    continue
                duration = (self.now() - started).total_seconds() if started else None
                metrics.record(decision, duration)
                for event in applied.events:
                    self.post(event.reason, event.message, event.warning)

    def _suspend(self, ns: str, run: spec.RunSpec, child_jobs: Sequence[model.ChildJob]) -> None:
        """spec.suspend reaches every unfinished Job (pods stop; no retry is consumed)."""
        for job in child_jobs:
            if waves.slots_in_use(job) == 0 and not job.suspend:
                continue  # finished
            if job.suspend != run.suspend:
                self.cluster.set_job_suspend(ns, job.name, run.suspend)
                self.post("JobSuspended" if run.suspend else "JobResumed",
                          f"Job {job.name} {'suspended' if run.suspend else 'resumed'}", False)

    def _context(self, uid: str, name: str, ns: str) -> jobs.JobContext:
        return jobs.JobContext(run_name=name, run_uid=uid, namespace=ns,
                               service_account=self.settings.job_service_account,
                               job_ttl_seconds=self.settings.job_ttl_seconds)

    def _recover(self, uid: str, name: str, ns: str, run: spec.RunSpec,
                 child_jobs: Sequence[model.ChildJob], in_flight: Mapping[str, tuple[int, int]]) -> None:
        """A wave recorded as running whose Job is missing (deleted, or never created): create it again.

        It gets the pods it was created with (`in_flight`, from qd_waves).
        """
        known = {j.name for j in child_jobs}
        for job_name in sorted(in_flight):
            if job_name in known:
                continue
            rows = ranges.job_ranges(self.conn, uid, job_name)
            running = [r for r in rows if r.state is model.RangeState.RUNNING]
            if not running or rows[0].wave is None:
                continue
            manifest = jobs.build_job(self._context(uid, name, ns), run, rows[0].stage, rows[0].tier, rows[0].wave,
                                      sorted(rows, key=lambda r: r.job_index or 0),
                                      parallelism=in_flight[job_name][0])
            self.adopt(manifest)
            if self.cluster.create_job(ns, manifest):
                self.post("JobCreated", f"Job {job_name} re-created for {len(rows)} range(s)", False)

    def _launch(self, uid: str, name: str, ns: str, run: spec.RunSpec,
                child_jobs: Sequence[model.ChildJob], in_flight: Mapping[str, tuple[int, int]]) -> None:
        """Start waves in the free pod slots; Jobs the watch has not delivered yet count by their record."""
        known = {j.name for j in child_jobs}
        unseen = sum(min(par, running) for job, (par, running) in in_flight.items() if job not in known)
        free = waves.free_slots(run.parallelism, child_jobs) - unseen
        if free <= 0:
            return
        pending = ranges.pending_ranges(self.conn, uid, per_group=run.wave_size)
        if not pending:
            return
        chosen = waves.choose(pending, free=free, wave_size=run.wave_size,
                              next_numbers=ranges.next_wave_numbers(self.conn, uid))
        ctx = self._context(uid, name, ns)
        for wave in chosen:
            job_name = jobs.job_name(name, wave.stage, wave.tier, wave.number)
            if not ranges.assign_wave(self.conn, uid, wave, job_name):
                continue
            manifest = jobs.build_wave_job(ctx, run, wave)
            self.adopt(manifest)
            self.cluster.create_job(ns, manifest)
            metrics.JOBS.labels(wave.stage.value).inc()
            memory = run.tiers(wave.stage)[wave.tier].quantity
            self.post("JobCreated", f"Job {job_name}: {len(wave.ranges)} {wave.stage.value} range(s), "
                      f"{wave.parallelism} pod(s) of {memory}", False)

    def _write(self, ns: str, name: str, old: Mapping[str, Any], facts: status.Facts,
               extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        new = status.compute(old, facts)
        new.update(extra or {})
        diff = status.patch(old, new)
        if "observedRerun" in old and "observedRerun" not in new:
            diff["observedRerun"] = None
        if diff:
            self.cluster.patch_status(ns, name, diff)
        for event in status.transition_events(old, new):
            self.post(event.reason, event.message, event.warning)
        return new

    def _finish(self, uid: str, ns: str, name: str, run: spec.RunSpec, new: Mapping[str, Any]) -> None:
        completed = new.get("completionTime")
        if not completed:
            return
        conditions = {c["type"]: c["status"] for c in new.get("conditions") or []}
        state = model.RunState.DEGRADED if conditions.get("Degraded") == "True" else model.RunState.SUCCEEDED
        planning.finish_run(self.conn, uid, state)
        ttl = run.ttl_seconds_after_finished
        finished_at = _parse_time(completed)
        if ttl is not None and finished_at and (self.now() - finished_at).total_seconds() >= ttl:
            self.log.info("deleting run %s/%s: ttlSecondsAfterFinished=%s elapsed", ns, name, ttl)
            self.cluster.delete_run(ns, name)


def _phase(status_block: Mapping[str, Any]) -> str:
    conditions = {c["type"]: c["status"] for c in status_block.get("conditions") or []}
    return next((p for p in ("Failed", "Degraded", "Succeeded") if conditions.get(p) == "True"), "Active")


def _parse_time(text: Any) -> dt.datetime | None:
    if not text:
        return None
    return dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
