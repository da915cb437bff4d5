# reading package
