"""Flow: a user sends a fax from the browser: /send, number, a PDF upload, optional send-at; then follows the
job's page (with --wait-report: until it is sent and offers the report). Prints {"job_id", "job_url", ...}."""
import re

import fgbrowser as fg


def body(b):
    a = b.args
    b.restore()
    b.go("/send")
    if b.path() != "/send":
        raise fg.StepFailed(f"/send answered {b.path()}")
    b.shoot("send")
    f = b.form_with("number")
    b.fill("number", a.number, f)
    file_field = next((x for x in f.find_elements(fg.By.CSS_SELECTOR, "input[type='file']")), None)
    if file_field is None:
        raise fg.StepFailed("the send form has no file input")
    file_field.send_keys(a.file)
    if a.send_at:
        b.fill("send_at", a.send_at, f)
    if a.cover:
        b.fill("cover", True, f)
    b.submit(f)
    out = {}
    # The answer is /send/<id>, which follows the rendering (it refreshes itself) and goes on to the job's
    # page /sent/<id> once the fax is queued, or says why it was refused.
    if re.fullmatch(r"/send/[^/]+", b.path()):
        out["progress_page"] = b.path()
        b.shoot("send-progress", both=False)
    def settled():
        if re.fullmatch(r"/sent/[^/]+", b.path()):
            return "job"
        if b.all_css("p.error"):
            return "refused"
        return None
    if b.wait_for("the job's page", settled, timeout=60) == "refused":
        raise fg.StepFailed("the fax was refused: " + b.text()[:800])
    m = re.fullmatch(r"/sent/([^/]+)", b.path())
    out["job_id"] = m.group(1)
    out["job_url"] = b.driver.current_url
    b.shoot("sent-job")
    if a.wait_report:
        # The page follows the job by itself (Refresh header) until it is final; sent, it offers the report.
        b.wait_for("the send report link", lambda: b.links(r"/sent/[^/]+/report\.pdf"), timeout=90, interval=1)
        out["state_text"] = b.by_css("#state").text
        b.shoot("sent-job-done")
        status, ctype, data = b.fetch(b.links(r"/sent/[^/]+/report\.pdf")[0])
        out.update({"report_status": status, "report_type": ctype, "report_is_pdf": data.startswith(b"%PDF")})
    out["page_text"] = b.text()[:800]
    b.go("/sent")
    b.shoot("sent")
    out["listed_in_sent"] = any(l.endswith("/sent/" + out["job_id"]) for l in b.links(r"/sent/[^/]+"))
    return out


fg.run("send", body, {
    "--number": {"required": True},
    "--file": {"required": True},
    "--send-at": {"default": None},
    "--cover": {"action": "store_true"},
    "--wait-report": {"action": "store_true"},
})
