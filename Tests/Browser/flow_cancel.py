"""Flow: a user cancels a waiting job on its page (/sent/<id>, form .../cancel of sent-detail.mustache).
Prints {"cancel_form_gone", "state_text", "message"}."""
from selenium.common.exceptions import StaleElementReferenceException

import fgbrowser as fg


def cancel_forms(b):
    return [f for f in b.all_css("form") if (f.get_attribute("action") or "").endswith("/cancel")]


def body(b):
    b.restore()
    b.go("/sent/" + b.args.job)
    b.shoot("job-before-cancel")
    # The page reloads itself every few seconds while the job is open (Refresh header): a reload between
    # finding the button and clicking it makes the element stale; then find it again.
    for attempt in range(3):
        try:
            forms = cancel_forms(b)
            if not forms:
                raise fg.StepFailed("the job page has no cancel form")
            b.submit(forms[0])
            break
        except StaleElementReferenceException:
            if attempt == 2:
                raise
    if b.path() != "/sent/" + b.args.job:
        b.go("/sent/" + b.args.job)
    notice = b.all_css("p.notice")
    out = {"cancel_form_gone": not cancel_forms(b), "state_text": b.by_css("#state").text,
           "message": notice[0].text if notice else None}
    b.shoot("job-canceled")
    return out


fg.run("cancel", body, {"--job": {"required": True}})
