"""The domain: one module per area, keyword-only functions that take plain values."""


class Problem(Exception):
    """Input a service cannot act on: the field it concerns and a sentence saying why.
    Nothing has been written when it is raised. The API answers it 422 (app.web.invalid);
    a page shows its form again with the message next to the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message
