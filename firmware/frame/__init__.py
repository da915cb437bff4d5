# frame package
