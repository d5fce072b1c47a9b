"""Feeds: articles rendered as RSS 2.0, Atom 1.0 and JSON Feed 1.1, an OPML list, WebSub pings."""
