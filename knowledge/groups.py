"""Groups of the knowledge base, as citizens see them when browsing."""

GROUP_LABELS: dict[str, str] = {
    "ho-tich": "Hộ tịch (khai sinh, kết hôn, khai tử...)",
    "chung-thuc": "Chứng thực",
    "cu-tru": "Cư trú (thường trú, tạm trú...)",
    "can-cuoc": "Thẻ căn cước, định danh điện tử",
    "tu-phap": "Lý lịch tư pháp",
    "xuat-nhap-canh": "Hộ chiếu",
    "kinh-doanh": "Hộ kinh doanh",
    "dat-dai-xay-dung": "Đất đai, xây dựng",
    "giao-thong": "Giấy phép lái xe, đăng ký xe",
    "bao-hiem": "Bảo hiểm xã hội, bảo hiểm y tế",
    "chu-de": "Hướng dẫn chung (nộp online, bưu điện, cư trú...)",
}


def group_label(slug: str) -> str:
    return GROUP_LABELS.get(slug, slug)


def ordered_groups(groups: dict) -> list[str]:
    """Group slugs in the order citizens see them: known groups first, in GROUP_LABELS order."""
    order = list(GROUP_LABELS)
    return sorted(groups, key=lambda slug: (order.index(slug) if slug in order else len(order), slug))
