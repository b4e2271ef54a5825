"""Flow: a user cancels a waiting job on its page (/sent/<id>). Prints {"canceled", "page_text"}."""
import fgbrowser as fg


def body(b):
    b.restore()
    b.go("/sent/" + b.args.job)
    b.shoot("job-before-cancel")
    forms = [f for f in b.all_css("form") if "cancel" in (f.get_attribute("action") or "")]
    if not forms:
        raise fg.StepFailed("the job page has no cancel form")
    b.submit(forms[0])
    if "/sent" not in b.path():
        b.go("/sent/" + b.args.job)
    b.shoot("job-canceled")
    # After cancelling the page offers no cancel any more.
    still = [f for f in b.all_css("form") if "cancel" in (f.get_attribute("action") or "")]
    return {"cancel_form_gone": not still, "page_text": b.text()[:800]}


fg.run("cancel", body, {"--job": {"required": True}})
