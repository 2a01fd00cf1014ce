"""The page form behind the editor's Experiments tab: checks that need every experiment of the
page at once, which a single experiment's `clean` cannot see (its siblings are not saved yet)."""

from __future__ import annotations

from collections import defaultdict

from django import forms
from django.db.models import Sum
from wagtail.admin.forms import WagtailAdminPageForm

# models.py imports panels.py, which names this form: the app's models load lazily here.


class ExperimentsPageForm(WagtailAdminPageForm):
    """Refuses two running tests on one personalized block (or two page tests on one page), and
    layers whose running and paused experiments would share more than 100% of their visitors."""

    def clean(self):
        cleaned = super().clean()
        formset = self.formsets.get("experiments")
        if formset is not None:
            kept = [form for form in formset.forms if form.is_valid() and not form.cleaned_data.get("DELETE")
                    and form.cleaned_data.get("key")]
            self._check_targets(kept)
            self._check_layers(kept)
            self._check_alternative_pages(kept)
        return cleaned

    def _check_alternative_pages(self, kept: list[forms.Form]) -> None:
        """A whole-page experiment serves its alternatives at this page's URL: an editor may only
        choose pages they may edit themselves (else editing page A would publish page B's content,
        which they may not touch, at A's URL)."""
        user = getattr(self, "for_user", None)
        if user is None or user.is_superuser:
            return
        for form in kept:
            arms = getattr(form, "formsets", {}).get("arms")
            for arm in arms.forms if arms is not None else ():
                page = arm.cleaned_data.get("alternative_page") if arm.is_valid() else None
                if page is not None and "alternative_page" in arm.changed_data and not page.permissions_for_user(user).can_edit():
                    arm.add_error("alternative_page", f"You may not edit “{page.title}”: choose a page you may edit.")

    def _check_targets(self, kept: list[forms.Form]) -> None:
        from .models import Experiment

        taken: dict[tuple[str, str], str] = {}
        for form in kept:
            data = form.cleaned_data
            if data.get("status") != Experiment.Status.RUNNING or data.get("target") == Experiment.Target.BLOCK:
                continue
            target = (data["target"], self._block_id(data.get("target_block") or "") if data["target"] == Experiment.Target.VARIANTS else "")
            if target in taken:
                what = "personalized block" if data["target"] == Experiment.Target.VARIANTS else "page"
                form.add_error("status", f"The experiment {taken[target]} already runs on this {what}: "
                                         "only one test may run on it at a time. Pause or finish one of them.")
            else:
                taken[target] = data["key"]

    def _block_id(self, target_block: str) -> str:
        from .targets import TargetError, personalized_block

        try:
            return personalized_block(self.instance, target_block).get("id") or target_block
        except TargetError:
            return target_block.strip() or "1"  # unresolvable here: compared as written

    def _check_layers(self, kept: list[forms.Form]) -> None:
        from .models import Experiment

        shares: dict[str, list[tuple[forms.Form, int]]] = defaultdict(list)
        for form in kept:
            data = form.cleaned_data
            if data.get("layer") and data.get("status") in Experiment.HOLDS_LAYER:
                shares[data["layer"]].append((form, data.get("layer_share_percent") or 0))
        for layer, members in shares.items():
            elsewhere = (Experiment.objects.filter(layer=layer, status__in=Experiment.HOLDS_LAYER)
                         .exclude(page_id=self.instance.pk).aggregate(total=Sum("layer_share_percent"))["total"] or 0)
            total = elsewhere + sum(share for _, share in members)
            if total > 100:
                for form, _ in members:
                    form.add_error("layer_share_percent", (
                        f"The running and paused experiments of layer “{layer}” would share {total}% of its visitors "
                        f"({elsewhere}% on other pages); at most 100%. Lower a share, or pause or finish one."))
