"""The words the synthetic mailbox of `bench.mailbox` is written with.

Names, companies, subjects, sentences and newsletter paragraphs: enough variety that
headers and bodies look like a sales rep's mail to a parser and a classifier, and
nothing that could be a real person's address (companies live under `.example`; the
freemail domains are real because the classifier must recognise them).
"""

from __future__ import annotations

from datetime import timedelta, timezone

__all__ = [
    "ASCII_FOLD",
    "AUTO_REPLIES",
    "COLLEAGUES",
    "COMPANY_KINDS",
    "COMPANY_STEMS",
    "COMPANY_TAILS",
    "FIRST_NAMES",
    "FOLLOWUP_SENTENCES",
    "FREEMAIL",
    "INTERNAL_SENTENCES",
    "INTERNAL_SUBJECTS",
    "INTERNATIONAL_FIRST_NAMES",
    "INTERNATIONAL_LAST_NAMES",
    "LAST_NAMES",
    "NEWSLETTERS",
    "NEWSLETTER_PARAGRAPHS",
    "OPENER_SUBJECTS",
    "PROSPECT_SENTENCES",
    "REP_REPLY_SENTENCES",
    "REP_ZONE",
    "SENTENCES",
    "TITLES",
    "TOPICS",
    "ZONES",
]


def _word_list(text: str, separator: str | None = None) -> tuple[str, ...]:
    return tuple(word.strip() for word in text.split(separator))


FIRST_NAMES = _word_list("""
    James Mary Robert Patricia Michael Jennifer David Linda William Elizabeth Richard Susan
    Thomas Karen Daniel Nancy Matthew Lisa Anthony Sandra Mark Emily Priya Rahul Wei Mei Kenji
    Aiko Olga Ivan Fatima Omar Chloe Lucas Hannah Noah Mia Leon Emma Liam Sofia Ethan Ava Mateo
    Nora Felix Grace
""")
LAST_NAMES = _word_list("""
    Smith Johnson Williams Brown Jones Miller Davis Wilson Anderson Taylor Thomas Moore Martin
    Jackson Thompson White Harris Clark Lewis Walker Hall Young King Wright Scott Green Baker
    Adams Nelson Hill Campbell Mitchell Patel Singh Chen Wang Tanaka Sato Ivanova Haddad Rossi
    Dubois Schmidt
""")
# Picked for about one person in ten: their display names need RFC 2047 encoded words.
INTERNATIONAL_FIRST_NAMES = _word_list("Jürgen Zoë José Søren Łukasz François Björn Renée Inés")
INTERNATIONAL_LAST_NAMES = _word_list("Müller García Nuñez Sørensen Gonçalves Öztürk Håkansson")
ASCII_FOLD = str.maketrans(
    {"ü": "ue", "ö": "oe", "ä": "ae", "ë": "e", "é": "e", "è": "e", "ç": "c", "ñ": "n",
     "ø": "o", "å": "a", "ł": "l", "ę": "e", "ó": "o", "í": "i", "á": "a", "ř": "r",
     "ş": "s", "Ł": "l", "Ö": "o", "Á": "a", "Ç": "c", "Ø": "o", "Å": "a", "Ü": "ue"}
)  # fmt: skip
COMPANY_STEMS = _word_list("""
    North Blue Summit Iron Bright Cedar Harbor Pioneer Quantum Silver Apex Granite Maple Vertex
    Lumen Atlas Crescent Evergreen Falcon Horizon Orbit
""")
COMPANY_TAILS = ("wind", "stone", "field", "bridge", "point", "works", "line", "gate", "forge")
COMPANY_KINDS = _word_list("""
    Logistics Analytics Health Foods Systems Capital Robotics Retail Energy Media Labs Insurance
    Manufacturing Bank Pharma Telecom Software
""")
FREEMAIL = ("gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "icloud.com")
TITLES = _word_list(
    "VP Operations|Head of IT|CTO|Director of Procurement|IT Manager|Chief Financial Officer"
    "|Operations Lead|Engineering Manager|COO",
    "|",
)
ZONES = tuple(timezone(timedelta(minutes=m)) for m in (-480, -300, -300, 0, 60, 60, 120, 330, 540))
REP_ZONE = timezone(timedelta(hours=-5))
COLLEAGUES = (
    ("Sam Ortiz", "sam.ortiz"), ("Priya Raman", "priya.raman"), ("Tom Becker", "tom.becker"),
    ("Lena Vogt", "lena.vogt"), ("Marcus Hale", "marcus.hale"), ("Ana Lima", "ana.lima"),
    ("Chris Doyle", "chris.doyle"), ("Yuki Mori", "yuki.mori"), ("Finance", "finance"),
)  # fmt: skip
NEWSLETTERS = (
    ("SaaS Weekly", "news@saasweekly.example", "saasweekly"),
    ("RevOps Digest", "digest@revops.example", "revops-digest"),
    ("CloudConf 2024", "hello@cloudconf.example", "cloudconf-attendees"),
    ("LinkedIn Sales Insights", "no-reply@insights.linkedin.example", "sales-insights"),
    ("Gartner Briefing", "briefing@gartner.example", "gartner-briefing"),
    ("The Pipeline", "editor@thepipeline.example", "the-pipeline"),
)
TOPICS = (
    "inventory forecasting", "invoice automation", "fleet tracking", "data pipeline",
    "vendor onboarding", "compliance reporting", "customer portal", "warehouse analytics",
)  # fmt: skip
OPENER_SUBJECTS = (
    "Quick question about {company}'s {topic}",
    "{company} x AcmeSoft",
    "Intro: AcmeSoft for {company}",
    "Idea for your {topic}",
    "Following up on CloudConf",
    "{first}, 15 minutes next week?",
    "Cutting {topic} costs at {company}",
    "Kostenlose Analyse für {company} \N{EN DASH} Termin?",
)
SENTENCES = (
    "I noticed {company} has been growing its operations team quite a bit this year.",
    "Teams like yours usually spend hours every week reconciling {topic} by hand.",
    "We help companies like {company} cut that work by more than half within a quarter.",
    "Would it make sense to set up a short call to see whether this fits?",
    "I have attached nothing, promise: just a two-minute read if you are curious.",
    "Northwind Logistics went live in six weeks and retired three spreadsheets.",
    "Our pricing is per site, so you only pay for what you actually roll out.",
    "Happy to share a short case study from a company about your size.",
    "If this is not a priority right now, just let me know and I will step back.",
    "Is {topic} something your team is looking at for next quarter?",
    "We integrate with the ERP you already have, so there is no migration project.",
    "The pilot takes two weeks and needs about an hour of your team's time.",
)
PROSPECT_SENTENCES = (
    "Thanks for reaching out, the timing is actually quite good.",
    "We are reviewing our {topic} setup this quarter.",
    "We'll discuss it with the team next week and get back to you.",
    "Could you send me pricing for roughly 40 users?",
    "I am not the right person for this, but I copied my colleague who owns it.",
    "Our budget cycle closes in March, so anything before that would be ideal.",
    "Can we do Thursday at 10am my time?",
    "Honestly we went with another vendor last year, but I am open to a comparison.",
    "I need to check with procurement before we can go further.",
    "The demo was helpful; my team had a few questions about the security review.",
)
REP_REPLY_SENTENCES = (
    "Thanks {first}, that is really helpful.",
    "Thursday at 10 works, I have sent an invite.",
    "Attached is the pricing overview we talked about, with the volume discount.",
    "I have looped in Sam from our solutions team who can answer the security questions.",
    "No problem at all, I will check back after your budget review.",
    "Let me know if anything else would help you make the case internally.",
)
FOLLOWUP_SENTENCES = (
    "Just floating this back to the top of your inbox.",
    "I know things get busy, so no need to reply if the timing is off.",
    "Here is a short checklist we share with teams evaluating {topic} tools.",
    "Has anything changed on your side since we last spoke?",
    "Should I close the file on this, or is the timing just off?",
)
INTERNAL_SUBJECTS = (
    "Pipeline review Friday", "Q{quarter} forecast", "Pricing approval for {company}",
    "Security questionnaire for {company}", "Lunch & learn: new onboarding flow",
    "Expense report reminder", "Deal desk: {company} discount",
)  # fmt: skip
INTERNAL_SENTENCES = (
    "Can you update the forecast before the call?",
    "I added my notes to the opportunity, have a look when you get a chance.",
    "Legal signed off on the redlines, we are good to send.",
    "Please submit last month's expenses by Friday.",
    "Marketing has new one-pagers in the shared drive.",
    "Let's sync on {company} before their board meeting.",
)
NEWSLETTER_PARAGRAPHS = (
    "This week: why revenue teams are consolidating their tool stacks, and what it means "
    "for procurement cycles in the second half of the year.",
    "Survey results: 62% of operations leaders plan to automate at least one back-office "
    "process this year. The most cited blockers are integration effort and change fatigue.",
    "Event recap: three takeaways from the keynote, including the shift from seat-based to "
    "usage-based pricing and what buyers now expect from a pilot.",
    "Tool of the week: a lightweight way to keep your CRM notes in sync with your inbox "
    "without copying and pasting every thread by hand.",
    "Reader question: how many follow-ups are too many? Our take, with data from 40,000 "
    "outbound sequences across mid-market software companies.",
)
AUTO_REPLIES = (
    ("Automatic reply: {subject}", "outlook"),
    ("Out of Office: {subject}", "plain"),
    ("Abwesenheitsnotiz: {subject}", "outlook"),
    ("Réponse automatique : {subject}", "plain"),
)
