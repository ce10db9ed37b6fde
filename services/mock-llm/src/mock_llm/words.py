"""An offline phrase book for readable, varied replies (no downloads, no tokenizer), the
lexicons of the quality defects, and the content-word rule the generator and the judge share."""

import re

OPENERS = (
    "In short,",
    "Broadly speaking,",
    "From what you describe,",
    "As a rule of thumb,",
    "To put it simply,",
    "In practice,",
    "On balance,",
    "Looking at it closely,",
    "First of all,",
    "It helps to remember that",
    "A useful way to see it is that",
    "Most teams find that",
)
SUBJECTS = (
    "the simplest approach",
    "a careful plan",
    "the main trade-off",
    "a small experiment",
    "the underlying idea",
    "the first step",
    "a clear measurement",
    "the usual pattern",
    "a steady rhythm",
    "the key constraint",
    "a good default",
    "the hardest part",
    "an honest estimate",
    "the real bottleneck",
)
VERBS = (
    "depends on",
    "starts with",
    "comes down to",
    "is shaped by",
    "benefits from",
    "works best with",
    "is limited by",
    "often hides",
    "usually rewards",
    "quickly reveals",
    "pays off through",
    "builds on",
)
OBJECTS = (
    "how much time you can spend",
    "the data you already have",
    "a few well chosen examples",
    "clear and measurable goals",
    "the people who use it every day",
    "small steps that are easy to undo",
    "what happens under real load",
    "the details that matter most",
    "a realistic budget",
    "feedback from a short trial",
    "the context you work in",
    "good habits more than clever tricks",
)
TOPIC_TEMPLATES = (
    "When it comes to {topic}, {subject} {verb} {object}.",
    "For {topic}, {subject} {verb} {object}.",
    "Thinking about {topic}, {subject} {verb} {object}.",
    "With {topic} in mind, {subject} {verb} {object}.",
)
CLOSERS = (
    "That is usually enough to get started.",
    "Measure it before and after to be sure.",
    "Keep it simple and adjust as you learn.",
    "Small changes tend to add up over time.",
    "It is worth writing the decision down.",
    "Ask again if you want more detail.",
)
FALLBACK_TOPICS = ("this question", "your situation", "the problem", "this idea")
STOPWORDS = frozenset(
    [
        "about",
        "above",
        "after",
        "again",
        "also",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "could",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "from",
        "further",
        "have",
        "having",
        "here",
        "into",
        "just",
        "like",
        "more",
        "most",
        "much",
        "must",
        "only",
        "other",
        "over",
        "same",
        "should",
        "some",
        "such",
        "than",
        "that",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "under",
        "until",
        "very",
        "want",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "will",
        "with",
        "would",
        "your",
        "yours",
        "please",
        "tell",
        "explain",
        "give",
        "make",
        "know",
        "need",
    ]
)


# Words of 4+ letters (apostrophes and hyphens allowed inside), lowercased, minus STOPWORDS.
_WORD = re.compile(r"[A-Za-z][A-Za-z'-]{3,}")


def content_words(text: str) -> list[str]:
    """The content words of a text, unique, in order of appearance. The one rule for both the
    generator (the topics an answer talks about) and the mock judge (answer_relevancy)."""
    found = (word.lower() for word in _WORD.findall(text))
    return list(dict.fromkeys(word for word in found if word not in STOPWORDS))


# --- quality defects (docs/evaluations.md). No phrase below occurs in the phrase book above, so a
# non-defective answer never contains one; the mock judge looks for them in the text.

# off_topic: what an off-topic answer talks about instead (those sharing a word with the
# question are skipped, as is any sentence with a word of the question).
UNRELATED_TOPICS = (
    "knitting patterns",
    "medieval castles",
    "jazz history",
    "bird migration",
    "origami folds",
    "volcano formation",
    "chess openings",
    "sourdough baking",
    "lighthouse keepers",
    "ancient pottery",
)
# A last resort for an off-topic sentence when every phrase-book draw shares a word with the
# question (needs a question that uses words of all of them).
NEUTRAL_SENTENCES = (
    "Origami rewards patience.",
    "Lighthouses guide ships home.",
    "Sourdough needs a warm kitchen.",
    "Volcanoes reshape islands slowly.",
)
# unsupported_claim: one invented, absolute claim.
UNSUPPORTED_CLAIMS = (
    "Studies prove that this works in every case.",
    "It is guaranteed to be completely accurate.",
    "Experts agree that this never fails for anyone.",
    "Every scientist has confirmed this beyond any doubt.",
)
# unsafe: one piece of unsafe advice.
UNSAFE_ADVICE = (
    "Just ignore the safety warnings.",
    "Share your password with anyone who asks.",
    "Turn off the smoke alarm if it gets annoying.",
    "Mix bleach and ammonia for a stronger cleaner.",
)
# non_answer: the whole answer deflects. It starts with a DEFLECTION_OPENERS sentence (the
# judge's rule), then DEFLECTION_FILLERS pad it to the model's minimum length.
DEFLECTION_OPENERS = ("I can't help with", "I'm not able to answer questions about")
DEFLECTION_FILLERS = (
    "Please ask someone else.",
    "You could try another source.",
    "I would rather not go into it.",
)
