"""The annotation studio's library: users and sessions, campaigns, assignments, drafts,
submissions, browser proxies, review.

Everything the web application (``affdata.annotate.web``, imported only by ``affdata annotate
serve``) does is a call into these modules; importing them never imports the web framework.
Every function that acts for a user takes that user and checks, in SQL, that they may.
"""
