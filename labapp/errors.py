"""Expected mistakes become one clear line, not a traceback."""
import click


class LabError(click.ClickException):
    """An error the user can fix; click prints it as `Error: <message>`."""
