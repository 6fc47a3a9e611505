"""A business that is not the demo shop: a bike-repair shop imports its own small FAQ through the
editor API, and a REST customer gets its answers and has off-topic questions refused, with no
retraining (issue 10). The texts were written for this test; none is in data/."""
from __future__ import annotations

import time

import yaml

from tests.conftest import Stack
from tests.test_editor_api import editor_login

SHOP = [
    {"id": "bike-book-service", "category": "workshop", "question": "How do I book my bike in for a service?",
     "answer": "Book a slot online at spokes.example/book or drop in: services take one working day.",
     "paraphrases": ["can i make an appointment for a bike service", "when can you service my bicycle", "I want to book a tune-up"]},
    {"id": "bike-puncture-price", "category": "prices", "question": "How much does it cost to fix a puncture?",
     "answer": "A puncture repair is 12 EUR including a new inner tube if needed, usually done while you wait.",
     "paraphrases": ["price for fixing a flat tyre", "what do you charge to repair a flat", "how expensive is an inner tube replacement"]},
    {"id": "bike-ebike-battery", "category": "workshop", "question": "Do you repair e-bike batteries?",
     "answer": "We test e-bike batteries for free and replace cells for Bosch, Shimano and Bafang systems.",
     "paraphrases": ["my electric bike battery does not hold a charge", "can you fix the battery of my ebike", "e-bike battery dies quickly"]},
    {"id": "bike-opening-hours", "category": "shop", "question": "When is the workshop open?",
     "answer": "Tuesday to Saturday, 9:00 to 18:00. Closed on Sundays and Mondays.",
     "paraphrases": ["what are your opening times", "are you open on saturday", "what time do you close"]},
    {"id": "bike-collect", "category": "workshop", "question": "Can you collect my bike from home?",
     "answer": "Yes: we pick up and return bikes within 5 km for 15 EUR each way.",
     "paraphrases": ["do you offer a pick-up service for bikes", "could someone fetch my bicycle from my house", "bike collection and delivery"]},
    {"id": "bike-brakes-squeak", "category": "workshop", "question": "My brakes squeak, what should I do?",
     "answer": "Squeaking usually means worn or contaminated pads: bring it in for a free 5-minute brake check.",
     "paraphrases": ["the brakes on my bike make a loud noise", "squealing disc brakes", "why are my bike brakes so noisy"]},
]
ASKED = {
    "hi, could I bring my bicycle in for a tune up next week": "bike-book-service",
    "how much for mending a flat tire": "bike-puncture-price",
    "the battery on my e bike only lasts 10 km now, can you repair it": "bike-ebike-battery",
    "are you open on mondays": "bike-opening-hours",
    "is there a service to pick my bike up from my flat": "bike-collect",
    "my front brake squeals every time i stop": "bike-brakes-squeak",
}
OFF_TOPIC = ["who wrote the odyssey", "how many grams are in a pound", "what is the best way to cook a steak",
             "which team won the super bowl last year"]


def test_a_bike_shop_imports_its_faq_and_is_answered_without_retraining(stack: Stack) -> None:
    editor = editor_login(stack)
    body = yaml.safe_dump({"faqs": SHOP}, sort_keys=False)
    imported = editor.post("/import?format=yaml&apply=1", body)
    assert imported.status_code == 200 and imported.json()["applied"] == len(SHOP), imported.text
    try:
        deadline = time.monotonic() + 60
        while True:  # live in the action server (and re-calibrated) without retraining Rasa
            calibrated = not editor.get("/calibration").json()["pending"]
            reply = stack.new_conversation().say(SHOP[0]["question"])["replies"]
            if calibrated and any(r.get("faq_id") == SHOP[0]["id"] for r in reply):
                break
            assert time.monotonic() < deadline, f"the imported FAQ never went live: {reply}"
            time.sleep(1)
        wrong = {}
        for text, faq_id in ASKED.items():
            replies = stack.new_conversation().say(text)["replies"]
            got = next((r.get("faq_id") for r in replies if r.get("faq_id")), None)
            if got != faq_id:
                wrong[text] = [(r.get("decision"), r.get("faq_id"), r["text"][:80]) for r in replies]
        # Retrieval is a model, not a lookup table: one of six colloquial questions may rank a near
        # entry first ("bring my bicycle in" ~ "fetch my bicycle"), never more.
        assert len(wrong) <= 1, f"the bike shop's customers were not answered: {wrong}"
        answered_wrong = {t: r for t, r in wrong.items() if any(d == "answer" for d, _, _ in r)}
        assert len(answered_wrong) <= 1, answered_wrong
        for text in OFF_TOPIC:
            replies = stack.new_conversation().say(text)["replies"]
            assert not any(r.get("faq_id") for r in replies), f"{text!r} was answered: {replies}"
    finally:
        for entry in SHOP:
            editor.delete(f"/faqs/{entry['id']}")
