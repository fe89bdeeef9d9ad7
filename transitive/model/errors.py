"""The errors a user can fix, each said in one line (the command line prints it after `error: `; in a notebook
IPython shows that line instead of a traceback)."""


class OneLineError(Exception):
    """A problem the user can fix, said in one line: the command line prints it after `error: `, and in a
    notebook IPython shows the line `_render_traceback_` returns instead of a traceback."""

    def _render_traceback_(self):
        return [f"{type(self).__name__}: {self}"]


class ParameterFileError(OneLineError):
    """A parameter file or checkpoint that cannot be used; the message is one line for the user."""


class OutputPathError(OneLineError):
    """A place a command cannot write to; the message is one line for the user."""
