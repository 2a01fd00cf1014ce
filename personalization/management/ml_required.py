"""The base of the management commands that need the `ml` extra (numpy, scipy, scikit-learn,
joblib): `tailored_train`, `tailored_evaluate`.

Their modules import nothing of the extra at module level (Django imports a command's module
before it can report anything), and without the extra every way in stops with one line that
names it: `manage.py <command>` prints a CommandError and exits 1, as for any failed command;
`call_command` raises CommandError. Their options (built from the ML modules) are never reached.
"""

from __future__ import annotations

import sys

from django.core.management.base import BaseCommand, CommandError

from tailored import ml


class MlCommand(BaseCommand):
    ml_task = "This command"  # how the message names what needs the extra

    def ml_missing_message(self) -> str:
        return ml.requirement_message(self.ml_task)

    def create_parser(self, prog_name, subcommand, **kwargs):
        if not ml.available():
            raise CommandError(self.ml_missing_message())
        return super().create_parser(prog_name, subcommand, **kwargs)

    def run_from_argv(self, argv):
        if not ml.available():
            # What Django prints for a CommandError raised by handle(), not a traceback.
            self.stderr.write(f"CommandError: {self.ml_missing_message()}")
            sys.exit(1)
        super().run_from_argv(argv)
