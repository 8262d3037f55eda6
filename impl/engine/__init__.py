"""The engine every command and the library run through: a setup and a seed make a run
(impl/engine/run.py), judged by the checkers of properties/."""

from kafkaproof.impl.engine.executors import run_check, run_many
from kafkaproof.impl.engine.run import RunResult, judged, run_one, summarize
from kafkaproof.impl.engine.setup import Setup, build_setup, fault_draws, steered

__all__ = ["RunResult", "Setup", "build_setup", "judged", "fault_draws", "run_check", "run_many", "run_one", "steered",
           "summarize"]
