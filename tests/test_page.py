"""The web page takes its emotion columns from the model's list, written in once by the server."""

from __future__ import annotations

import json
import re

from fakeblock.common.model_io import EMOTIONS
from fakeblock.display.page import PAGE_HTML, page_html

DATA_BLOCK = re.compile(r'<script id="emotions" type="application/json">(.*?)</script>', re.S)


def test_the_page_carries_the_models_emotions_in_score_order():
    assert json.loads(DATA_BLOCK.search(PAGE_HTML).group(1)) == list(EMOTIONS)
    assert '"angry", "disgust"' not in PAGE_HTML.split("</script>", 1)[1], "the script keeps a copy of the list"


def test_a_name_cannot_close_the_data_block():
    page = page_html(("calm</script><script>alert(1)</script>",))
    assert json.loads(DATA_BLOCK.search(page).group(1)) == ["calm</script><script>alert(1)</script>"]
