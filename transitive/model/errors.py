"""The one base of the errors a user can fix (`OneLineError`): each is said in one line. The command line prints
it after `error: ` and exits with its `status` (2); in a notebook IPython shows that line instead of a traceback.
Each layer derives its own errors from it (a bad setting, file, choice, switch or command line)."""


class OneLineError(Exception):
    """A problem the user can fix, said in one line: the command line prints it after `error: ` and exits with
    `status`; in a notebook IPython shows the line `_render_traceback_` returns instead of a traceback (the
    class's name first, unless `named` is False)."""

    status = 2
    named = True

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}" if self.named else str(self)]


class ParameterFileError(OneLineError):
    """A parameter file or checkpoint that cannot be used."""


class OutputPathError(OneLineError):
    """A place a command cannot write to."""


class ChoiceError(OneLineError, ValueError):
    """A value outside its allowed values (a setting, or a trial, item or pair that a run does not have): the
    message names it and says what is allowed; `setting` (when given) is its name, `detail` the rest, so that
    the command line can name its option and the notebook its switch instead."""

    def __init__(self, message: str, setting: str | None = None):
        super().__init__(message)
        self.setting = setting
        self.detail = message.removeprefix(f"{setting}: ") if setting else message
