// WhatsApp-style formatting (static/widget/format.js): a tree of plain objects, no DOM.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { parse, plainText, urlAt } from "../../static/widget/format.js";

const t = (text) => ({ type: "text", text });
const span = (type, ...children) => ({ type, children });

describe("markers", () => {
  test("bold, italic, strike, inline code and a block", () => {
    assert.deepEqual(parse("*b* _i_ ~s~ `c`"), [
      span("bold", t("b")),
      t(" "),
      span("italic", t("i")),
      t(" "),
      span("strike", t("s")),
      t(" "),
      { type: "code", text: "c" },
    ]);
    assert.deepEqual(parse("```line 1\n  *line 2*```"), [
      { type: "pre", text: "line 1\n  *line 2*" },
    ]);
  });

  test("different markers nest; the same one does not", () => {
    assert.deepEqual(parse("*_both_*"), [span("bold", span("italic", t("both")))]);
    assert.deepEqual(parse("_a *b* c_"), [span("italic", t("a "), span("bold", t("b")), t(" c"))]);
    assert.deepEqual(parse("*a *b* c*"), [span("bold", t("a *b")), t(" c*")]);
  });

  test("a marker inside a word, next to a space, empty or across lines is just a character", () => {
    for (const s of [
      "snake_case_name",
      "2*3*4",
      "a*b*c",
      "* not *",
      "*not *",
      "**",
      "~~",
      "*a\nb*",
    ]) {
      assert.deepEqual(parse(s), [t(s)], s);
    }
  });

  test("punctuation around a span is fine; a letter right after the closing marker is not", () => {
    assert.deepEqual(parse("(*yes*)."), [t("("), span("bold", t("yes")), t(").")]);
    assert.deepEqual(parse("*no*pe"), [t("*no*pe")]);
    assert.deepEqual(parse("你好*粗体*"), [t("你好*粗体*")]);
    assert.deepEqual(parse("你好 *粗体*"), [t("你好 "), span("bold", t("粗体"))]);
  });

  test("code is literal: no markers and no links inside", () => {
    assert.deepEqual(parse("`*a* https://x.y`"), [{ type: "code", text: "*a* https://x.y" }]);
    assert.deepEqual(parse("``"), [t("``")]);
    assert.deepEqual(parse("`a\nb`"), [t("`a\nb`")]);
    assert.deepEqual(parse("```never closed"), [t("```never closed")]);
  });
});

describe("links", () => {
  test("an http(s) URL is one piece that markers never cut", () => {
    assert.deepEqual(parse("see https://x.com/a_b_c_d ok"), [
      t("see "),
      { type: "link", url: "https://x.com/a_b_c_d" },
      t(" ok"),
    ]);
    assert.deepEqual(parse("*https://x.com/p*"), [
      span("bold", { type: "link", url: "https://x.com/p" }),
    ]);
    assert.deepEqual(parse("_go to https://x.com/a_b_"), [
      span("italic", t("go to "), { type: "link", url: "https://x.com/a_b" }),
    ]);
  });

  test("only http(s), and without the sentence's trailing punctuation", () => {
    assert.equal(urlAt("https://x.com/t?id=1.", 0), "https://x.com/t?id=1");
    assert.equal(urlAt("https://x.com/（注意）。", 0), "https://x.com/（注意");
    assert.equal(urlAt("javascript:alert(1)", 0), "");
    assert.equal(urlAt("ftp://x.com", 0), "");
    const nodes = parse("javascript:alert(1) data:text/html,<b>x</b>");
    assert.deepEqual(nodes, [t("javascript:alert(1) data:text/html,<b>x</b>")]);
  });
});

describe("HTML stays text", () => {
  test("markup inside markers is text in the tree, never a tag", () => {
    const nodes = parse(
      '*<img src=x onerror=alert(1)>* _<script>x()</script>_ ```<a href="javascript:y">```',
    );
    assert.deepEqual(nodes, [
      span("bold", t("<img src=x onerror=alert(1)>")),
      t(" "),
      span("italic", t("<script>x()</script>")),
      t(" "),
      { type: "pre", text: '<a href="javascript:y">' },
    ]);
    const types = JSON.stringify(nodes).match(/"type":"[a-z]+"/g);
    assert.ok(types.every((x) => /text|bold|italic|pre/.test(x)));
  });

  test("nothing is lost: the tree's text is the input less the markers", () => {
    assert.equal(plainText(parse("*a* _b_ ~c~ `d` x_y_z")), "a b c d x_y_z");
    assert.deepEqual(parse(""), []);
    assert.deepEqual(parse(null), []);
  });
});
