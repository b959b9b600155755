"""Page-number pagination; clients may ask for bigger pages (bounded) with ?page_size=."""

from __future__ import annotations

from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    page_size_query_param = "page_size"
    max_page_size = 1000
