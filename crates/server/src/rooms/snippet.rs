//! Search snippets: the part of a message around its first match, as plain-text pieces
//! with the matched words marked.
//!
//! Built here rather than by the engines (FTS5 `snippet()`, PostgreSQL `ts_headline`)
//! so both backends give the same snippet, and because `ts_headline` drops text that
//! its parser takes for HTML tags (`<b>` vanished from "a <b>bold</b> claim"), which
//! in a chat is text people wrote. The database already chose and ranked the hits; this
//! only marks, in each hit of the page, the words of the query.

use socket_hub_protocol::rest::SnippetPart;

/// Words shown around the first match.
const WINDOW_WORDS: usize = 24;
/// Words of context kept before the first match.
const LEAD_WORDS: usize = 8;
/// Marks a cut at either end of the snippet.
const ELLIPSIS: &str = "…";

/// One word of a query: lower-cased letters and digits; `prefix` matches its start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct QueryWord {
    pub(super) text: String,
    pub(super) prefix: bool,
}

/// Words of `text` as engines see them: runs of letters, digits and combining marks.
fn is_word_char(c: char) -> bool {
    c.is_alphanumeric()
        || matches!(u32::from(c), 0x0300..=0x036F | 0x1AB0..=0x1AFF | 0x20D0..=0x20FF)
}

/// The words of a query term (`foo-bar*` is `foo`, then `bar` as a prefix).
pub(super) fn query_words(term: &str, prefix: bool) -> Vec<QueryWord> {
    let words: Vec<&str> = term
        .split(|c: char| !is_word_char(c))
        .filter(|w| !w.is_empty())
        .collect();
    let last = words.len().saturating_sub(1);
    words
        .into_iter()
        .enumerate()
        .map(|(i, w)| QueryWord {
            text: w.to_lowercase(),
            prefix: prefix && i == last,
        })
        .collect()
}

/// A run of `content`: a word or what separates words.
struct Run<'a> {
    text: &'a str,
    word: bool,
}

fn runs(content: &str) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    let mut start = 0;
    let mut in_word = None;
    for (at, c) in content.char_indices() {
        let word = is_word_char(c);
        match in_word {
            Some(was) if was == word => {}
            Some(was) => {
                runs.push(Run {
                    text: &content[start..at],
                    word: was,
                });
                start = at;
                in_word = Some(word);
            }
            None => in_word = Some(word),
        }
    }
    if let Some(word) = in_word {
        runs.push(Run {
            text: &content[start..],
            word,
        });
    }
    runs
}

fn matches(word: &str, query: &[QueryWord]) -> bool {
    let word = word.to_lowercase();
    query.iter().any(|q| {
        if q.prefix {
            word.starts_with(&q.text)
        } else {
            word == q.text
        }
    })
}

/// The snippet of `content` for `query`: up to [`WINDOW_WORDS`] words starting a little
/// before the first match, `…` where cut, matched words as `hit` pieces.
pub(super) fn snippet(content: &str, query: &[QueryWord]) -> Vec<SnippetPart> {
    let runs = runs(content);
    let words: Vec<usize> = (0..runs.len()).filter(|&i| runs[i].word).collect();
    let hit = |i: usize| runs[i].word && matches(runs[i].text, query);
    let first_hit = words.iter().position(|&i| hit(i)).unwrap_or(0);
    let start_word = first_hit
        .saturating_sub(LEAD_WORDS)
        .min(words.len().saturating_sub(WINDOW_WORDS));
    let end_word = (start_word + WINDOW_WORDS).min(words.len());
    // Runs from the window's first word (or the start) to its last (or the end).
    let from = if start_word == 0 {
        0
    } else {
        words[start_word]
    };
    let to = if end_word >= words.len() {
        runs.len()
    } else {
        words[end_word - 1] + 1
    };
    let mut parts: Vec<SnippetPart> = Vec::new();
    let mut push = |text: &str, is_hit: bool| match parts.last_mut() {
        Some(last) if last.hit == is_hit => last.text.push_str(text),
        _ => parts.push(SnippetPart {
            text: text.to_owned(),
            hit: is_hit,
        }),
    };
    if from > 0 {
        push(ELLIPSIS, false);
    }
    for (i, run) in runs.iter().enumerate().take(to).skip(from) {
        push(run.text, hit(i));
    }
    if to < runs.len() {
        push(ELLIPSIS, false);
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(parts: &[SnippetPart]) -> String {
        parts
            .iter()
            .map(|p| {
                if p.hit {
                    format!("[{}]", p.text)
                } else {
                    p.text.clone()
                }
            })
            .collect()
    }

    fn query(words: &[(&str, bool)]) -> Vec<QueryWord> {
        words.iter().flat_map(|(w, p)| query_words(w, *p)).collect()
    }

    #[test]
    fn marks_matched_words_and_keeps_the_rest_as_text() {
        let q = query(&[("zephyr", false)]);
        assert_eq!(
            render(&snippet("our Zephyr <b>secret</b> & stuff", &q)),
            "our [Zephyr] <b>secret</b> & stuff"
        );
        let q = query(&[("summ", true), ("a", false)]);
        assert_eq!(
            render(&snippet("a long summer, summary", &q)),
            "[a] long [summer], [summary]"
        );
        assert_eq!(
            render(&snippet("café cafe", &query(&[("café", false)]))),
            "[café] cafe"
        );
    }

    #[test]
    fn long_messages_show_a_window_around_the_first_match() {
        let words: Vec<String> = (0..100).map(|i| format!("w{i}")).collect();
        let content = words.join(" ");
        let parts = snippet(&content, &query(&[("w50", false)]));
        let text = render(&parts);
        assert!(text.starts_with("…w42 "), "{text}");
        assert!(text.contains("[w50]"), "{text}");
        assert!(text.ends_with("w65…"), "{text}");
        // Near the end, the window ends with the message.
        let text = render(&snippet(&content, &query(&[("w98", false)])));
        assert!(
            text.starts_with("…w76 ") && text.ends_with("[w98] w99"),
            "{text}"
        );
    }

    #[test]
    fn query_words_split_like_the_engines() {
        assert_eq!(
            query_words("foo-bar", true),
            [
                QueryWord {
                    text: "foo".into(),
                    prefix: false
                },
                QueryWord {
                    text: "bar".into(),
                    prefix: true
                }
            ]
        );
        assert!(query_words("--", false).is_empty());
    }
}
