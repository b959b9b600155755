"""A report as a downloadable file: CSV, an Excel 2003 XML workbook (for ``.xls``) or a one-page PDF."""

from __future__ import annotations

import csv
import io
import xml.etree.ElementTree as ET


def csv_file(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode()


def spreadsheet_xml(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    """An Excel 2003 XML workbook: what Excel opens from a ``.xls`` download without a binary writer."""
    ns = "urn:schemas-microsoft-com:office:spreadsheet"
    ET.register_namespace("ss", ns)
    book = ET.Element(f"{{{ns}}}Workbook")
    sheet = ET.SubElement(book, f"{{{ns}}}Worksheet", {f"{{{ns}}}Name": title[:31] or "Report"})
    table = ET.SubElement(sheet, f"{{{ns}}}Table")
    for values in [header, *rows]:
        row = ET.SubElement(table, f"{{{ns}}}Row")
        for value in values:
            cell = ET.SubElement(row, f"{{{ns}}}Cell")
            ET.SubElement(cell, f"{{{ns}}}Data", {f"{{{ns}}}Type": "String"}).text = value
    return b'<?xml version="1.0"?>\n' + ET.tostring(book, encoding="utf-8")


def _pdf_text(text: str) -> str:
    return (
        text.replace("\\", "\\\\")
        .replace("(", "\\(")
        .replace(")", "\\)")
        .encode("latin-1", "replace")
        .decode("latin-1")
    )


def pdf(title: str, header: list[str], rows: list[list[str]]) -> bytes:
    """A small valid one-page PDF listing the first rows of the report."""
    lines = [title, " | ".join(header)] + [" | ".join(r) for r in rows[:45]]
    if len(rows) > 45:
        lines.append(f"... {len(rows) - 45} more rows")
    text = "BT /F1 9 Tf 36 806 Td 12 TL " + " ".join(f"({_pdf_text(line[:110])}) '" for line in lines) + " ET"
    objects = [
        "<< /Type /Catalog /Pages 2 0 R >>",
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>",
        f"<< /Length {len(text.encode('latin-1'))} >>\nstream\n{text}\nendstream",
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += f"{number} 0 obj\n{body}\nendobj\n".encode("latin-1")
    xref = len(out)
    out += f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode()
    out += "".join(f"{o:010d} 00000 n \n" for o in offsets).encode()
    out += f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n".encode()
    return bytes(out)


# format -> writer of (title, header, rows)
FILE_WRITERS = {"csv": csv_file, "xls": spreadsheet_xml, "pdf": pdf}
