"""Admin views: the list of experiments, an experiment's results, and its POST actions
(start, pause, finish, promote a winner), each checked against the page's publish permission.
The list needs the reports permission (tailored.report_access); an experiment's results need it
or the permission to publish its page."""

from __future__ import annotations

from datetime import datetime

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.db.models import Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.views.decorators.http import require_POST

from tailored import holdout, holdout_admin, ml
from tailored.report_access import REFUSAL, can_view_reports, reports_only

from . import svg
from .models import Experiment
from .promote import PromotionError, promote
from .results import allocation_history, goal_family, page_family
from .results import results as compute_results
from .targets import problem

TRANSITIONS = {
    "start": (Experiment.Status.RUNNING, "started"),
    "pause": (Experiment.Status.PAUSED, "paused"),
    "finish": (Experiment.Status.FINISHED, "finished"),
}


@reports_only
def index(request: HttpRequest) -> HttpResponse:
    experiments = (
        Experiment.objects.select_related("page")
        .annotate(exposures=Sum("counts__exposures"))
        .order_by("status", "-created_at")
    )
    return TemplateResponse(request, "tailored_experiments/index.html", {"experiments": experiments})


def detail(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = get_object_or_404(Experiment.objects.select_related("page", "audience"), pk=pk)
    if not (can_view_reports(request.user) or _can_publish(request, experiment)):
        raise PermissionDenied(REFUSAL)  # who may start, pause or promote it sees its results too
    if not ml.available():
        # The results are scipy's statistics; the list and the start/pause/finish actions are not.
        messages.error(request, ml.requirement_message(f"The results of “{experiment.name}”"))
        return redirect("tailored_experiments:index")
    goal = request.GET.get("goal") if request.GET.get("goal") in experiment.goal_list else None
    found = compute_results(experiment, goal)
    labels = {arm.key: arm.label for arm in found.arms} | {"holdout": "Holdout"}
    history = allocation_history(experiment)
    page_comparisons = page_family(experiment)
    context = {
        "experiment": experiment,
        "results": found,
        "problem": problem(experiment) if experiment.status == Experiment.Status.RUNNING else None,
        "rate_chart": svg.rate_chart(found.arms) if found.arms else "",
        "timeline_chart": svg.timeline_chart(found.series, labels),
        "bandit": experiment.allocation == Experiment.Allocation.THOMPSON,
        "allocation_history": history,
        "allocation_chart": svg.allocation_chart(history, labels, until=_allocation_until(experiment, history)),
        "goal_comparisons": goal_family(experiment) if len(experiment.goal_list) > 1 else [],
        # Only worth a section when other experiments run on the same page.
        "page_comparisons": page_comparisons if len({c.experiment for c in page_comparisons}) > 1 else [],
        "can_publish": _can_publish(request, experiment),
        "edit_url": reverse("wagtailadmin_pages:edit", args=[experiment.page_id]),
        "global_lift": global_lift(experiment.primary_goal),
    }
    return TemplateResponse(request, "tailored_experiments/detail.html", context)


def global_lift(goal: str):
    """Personalization's own lift on this goal (the global holdout), when the holdout is on and
    measures the goal: the figure an experiment's lift sits on top of."""
    if holdout.share() <= 0 or goal not in holdout.goals():
        return None
    return holdout_admin.lift_report([goal])[0]


@require_POST
def change_status(request: HttpRequest, pk: int, action: str) -> HttpResponse:
    experiment = _editable(request, pk)
    if action not in TRANSITIONS:
        raise PermissionDenied
    status, said = TRANSITIONS[action]
    if status == Experiment.Status.RUNNING and (reason := problem(experiment)):
        messages.error(request, f"Not started: {reason}")
    else:
        experiment.status = status
        experiment.save(update_fields=["status", "updated_at"])
        messages.success(request, f"“{experiment.name}” {said}.")
    return redirect("tailored_experiments:detail", pk=pk)


@require_POST
def promote_winner(request: HttpRequest, pk: int) -> HttpResponse:
    experiment = _editable(request, pk)
    arm = request.POST.get("arm", "")
    try:
        promote(experiment, arm, user=request.user)
    except PromotionError as error:
        messages.error(request, f"Not promoted: {error}")
    else:
        messages.success(request, f"“{arm}” is now what everyone sees; the experiment is finished.")
    return redirect("tailored_experiments:detail", pk=pk)


def _allocation_until(experiment: Experiment, history: list) -> datetime | None:
    """Where the allocation chart ends: now while the bandit runs, else its last change."""
    if not history:
        return None
    return timezone.now() if experiment.status == Experiment.Status.RUNNING else history[-1].at


def _can_publish(request: HttpRequest, experiment: Experiment) -> bool:
    return experiment.page.permissions_for_user(request.user).can_publish()


def _editable(request: HttpRequest, pk: int) -> Experiment:
    experiment = get_object_or_404(Experiment.objects.select_related("page"), pk=pk)
    if not _can_publish(request, experiment):
        raise PermissionDenied
    return experiment


urlpatterns = [
    path("", index, name="index"),
    path("<int:pk>/", detail, name="detail"),
    path("<int:pk>/promote/", promote_winner, name="promote"),  # before the generic action route
    path("<int:pk>/<slug:action>/", change_status, name="status"),
]
