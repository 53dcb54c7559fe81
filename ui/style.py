"""The page's CSS (phone and desktop layout, the answer card, passages read as running text)."""

CSS = """
.gradio-container { max-width: 920px !important; margin: 0 auto !important; }
#title h1 { margin-bottom: 0.1em; }
#subtitle p { margin-top: 0; color: var(--body-text-color-subdued); }
#ask-row { align-items: stretch; flex-wrap: nowrap; gap: 8px; }
#ask-row > * { min-width: 0 !important; }
#ask-button { max-width: 96px; min-width: 72px !important; }
.answer-box { border-left: 6px solid #eab308; background: var(--block-background-fill);
              padding: 14px 18px; border-radius: 8px; }
.answer-box .answer-kicker { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.06em;
                             color: var(--body-text-color-subdued); margin: 0 0 4px 0; }
.answer-box .answer-text { font-size: 1.3rem; line-height: 1.45; font-weight: 600; margin: 0; }
.answer-box .answer-phrase { font-size: 1.9rem; font-weight: 700; margin: 0 0 0.3rem 0; }
.answer-box .answer-text mark { background: #fdba74; color: inherit; padding: 0 0.1em; border-radius: 3px; }
.answer-box .answer-meta { font-size: 0.85rem; color: var(--body-text-color-subdued); margin: 6px 0 0 0; }
.answer-box.no-answer { border-left-color: #94a3b8; }
.answer-box.problem { border-left-color: #dc2626; }
.answer-box.problem .answer-text { font-size: 1.05rem; font-weight: 500; }
#question-counter { text-align: right; font-size: 0.75rem; color: var(--body-text-color-subdued);
                    margin-top: -6px; min-height: 1em; }
#question-counter.near-limit { color: #b91c1c; }
.answer-box.no-answer .answer-text { font-size: 1.1rem; font-weight: 500; }
.passage-head { font-size: 0.9rem; color: var(--body-text-color-subdued); margin: 0; }
.passage-head b { color: var(--body-text-color); }
.passage { gap: 0 !important; border: 1px solid var(--border-color-primary) !important;
           border-radius: 10px !important; overflow: hidden;
           background: var(--block-background-fill) !important; }
.passage > div, .passage .block, .passage .styler { border: none !important; box-shadow: none !important;
           background: var(--block-background-fill) !important; }
.passage .html-container { padding: 10px 14px 0 14px !important; }
.passage .passage { border: none !important; border-radius: 0 !important; }  /* Gradio nests a group twice */
#status .html-container { padding-top: 0 !important; padding-bottom: 0 !important; }
#page-body { gap: var(--layout-gap); }
/* Gradio lays tokens out as flex boxes and breaks words anywhere; a passage reads better as
   one paragraph of running text with the answering sentence marked inline. */
.passage-text .textfield { display: block !important; word-break: normal !important;
                           overflow-wrap: break-word; line-height: 1.7 !important; }
.passage-text .token-container { display: inline !important; }
.passage-text .token, .passage-text .token.highlighted { display: inline !important; margin: 0 !important;
    padding: 2px 0 !important; box-decoration-break: clone; -webkit-box-decoration-break: clone;
    cursor: text !important; }
.passage-text .token.highlighted { padding: 2px 3px !important; }
.passage-text .text { white-space: normal !important; }
.corpus-status p { margin: 0.2em 0; }
.upload-problem { color: #b91c1c; }
/* Once files are in the box Gradio floats its upload/clear icons over the label's right end;
   keep the label's words clear of them at any width. */
#upload label[data-testid="block-label"] { padding-right: 72px; max-width: 100%; }
@media (max-width: 480px) {
  .gradio-container { padding: 0 6px !important; }
  #page-body > #options { order: 2; }
  #page-body > #results { order: 1; }
  #examples button { font-size: 0.85rem; padding: 4px 8px; text-align: left; }
  .answer-box .answer-text { font-size: 1.12rem; }
}
"""
