"""Page-number pagination; clients may ask for bigger pages (bounded) with ?page_size=.

Stricter than DRF's default, which quietly falls back to the default size: a page_size that is not a
whole number in range is a 400, so a client's typo does not turn into a silently different page.
"""

from __future__ import annotations

from typing import Any

from rest_framework import pagination
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000

    def get_page_size(self, request: Request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return int(self.page_size or 50)
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise ValidationError({self.page_size_query_param: [f"A whole number from 1 to {self.max_page_size}."]})
        return size

    def get_page_number(self, request: Request, paginator: Any) -> Any:
        # DRF reads an empty ?page= as page 1; here it is an invalid page (404) like any other non-number.
        raw = request.query_params.get(self.page_query_param)
        if raw is None:
            return 1
        return paginator.num_pages if raw in self.last_page_strings else raw

    def get_schema_operation_parameters(self, view: Any) -> list[dict[str, Any]]:
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            if parameter["name"] == self.page_size_query_param:
                parameter["schema"] |= {"minimum": 1, "maximum": self.max_page_size}
        return parameters
