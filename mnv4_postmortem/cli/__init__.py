"""Command-line interface (click). The root group only wires subcommands together."""
import click


@click.group()
def main() -> None:
    """Post-mortem analyzer for timm training runs."""
