"""Patrol allocation: where to send a limited number of units, and how the plan did."""

from crimelens.patrol.allocation import PatrolPlan, allocate, score_plan

__all__ = ["PatrolPlan", "allocate", "score_plan"]
