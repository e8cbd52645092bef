"""Errors raised for bad user input."""


class FormulaError(ValueError):
    """The formula cannot be parsed or refers to something that does not exist."""


class DataError(ValueError):
    """The data do not fit the formula or the family."""
