"""`--serve`: a local, read-only web page that follows the session (diagram, pstree, and for the trainer notes and
a timer), pushed to the browser as steps run."""
